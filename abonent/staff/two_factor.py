"""Two-factor authentication for staff: TOTP codes (RFC 6238) with single-use recovery codes, via django-otp.

A user has two-factor authentication when they hold a confirmed TOTP device. ``StaffUser.two_factor_enabled``
mirrors that so the middleware can tell on every console request without a query; only the actions here change
the devices, and each keeps the flag in step inside its transaction. Recovery codes are django-otp's static
device beside the TOTP one: a code is deleted when it verifies, so it works once.

Guessing is bounded twice. Every wrong code at login (and every wrong password or code where a signed-in user
turns the factor off or replaces the recovery codes) is a failed ``LoginAttempt``, so the console's lockout
counts it with the wrong passwords, per login and per address. django-otp's exponential back-off per device
(1, 2, 4 … seconds after successive failures, reset only by a right code) then caps slow guessing across
lockout windows: the lockout alone would allow five guesses every fifteen minutes for ever.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from base64 import b32encode
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from abonent.core import audit, clock

from .actions import LoginLockedOut, begin_login_attempt, mark_login_attempt_succeeded, withdraw_login_attempt
from .models import StaffUser

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "authenticator"
RECOVERY_DEVICE_NAME = "recovery codes"


# Reads.


def two_factor_required(user) -> bool:
    """Whether ``user``'s role must pass a second factor (``ABONENT_REQUIRE_2FA_ROLES``)."""
    return not getattr(user, "is_service_account", False) and user.role in settings.ABONENT_REQUIRE_2FA_ROLES


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def normalise_code(raw: str) -> str:
    """A code as typed: authenticator apps show "123 456", recovery codes are printed as "abcd-efgh"."""
    return "".join(ch for ch in (raw or "") if ch not in " -\t").lower()


def secret_for_humans(device: TOTPDevice) -> str:
    """The key in base32, in groups of four, for typing into an app that cannot scan the QR code."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def format_recovery_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


class CodeCheck(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    # The device's back-off after earlier wrong codes: the code was not even compared.
    THROTTLED = "throttled"


@dataclass(frozen=True)
class CodeResult:
    check: CodeCheck
    device: TOTPDevice | StaticDevice | None = None
    retry_after_seconds: int = 0

    @property
    def used_recovery_code(self) -> bool:
        return isinstance(self.device, StaticDevice)


def _check_code(device: TOTPDevice | StaticDevice | None, code: str) -> CodeResult:
    """Verify ``code`` on ``device`` (locked by the caller's transaction so one code cannot be used twice at once)."""
    if device is None:
        return CodeResult(CodeCheck.WRONG)
    allowed, info = device.verify_is_allowed()
    if not allowed:
        wait = (info["locked_until"] - timezone.now()).total_seconds()
        return CodeResult(CodeCheck.THROTTLED, retry_after_seconds=max(1, math.ceil(wait)))
    # verify_token saves the device either way: the step it accepted (no replay) or the failure count.
    if device.verify_token(code):
        return CodeResult(CodeCheck.ACCEPTED, device=device)
    return CodeResult(CodeCheck.WRONG)


def verify_code(user: StaffUser, raw_code: str) -> CodeResult:
    """Check a code typed by ``user`` against their confirmed devices: six digits go to the authenticator, anything
    else to the recovery codes, so a mistyped recovery code does not push back the authenticator (and the reverse).

    Writes django-otp's own state (the last step used, the back-off, a used recovery code) and nothing else.
    """
    code = normalise_code(raw_code)
    model = TOTPDevice if code.isdigit() and len(code) == 6 else StaticDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        return _check_code(device, code)


# Writes.


def do_verify_login_code(request, *, user: StaffUser, code: str) -> CodeResult:
    """The second step of a console login, after the password.

    Raises ``LoginLockedOut`` while the login or the address is locked out (the code is then not checked). A
    wrong code is a failed login attempt, counted by the lockout like a wrong password; a right one is the
    login's success (the password step of a user with two-factor authentication records none, so knowing the
    password cannot reset the count between guessed codes) and writes the ``staff.login`` audit row. The attempt
    is recorded before the code is checked, so codes sent together count each other (``begin_login_attempt``).
    """
    from abonent.core.metrics import LOGIN_FAILURES
    from abonent.core.middleware import client_ip

    ip = client_ip(request)
    username = user.get_username()
    try:
        attempt = begin_login_attempt(username=username, ip_address=ip)
    except LoginLockedOut:
        LOGIN_FAILURES.labels("locked_out").inc()
        raise
    result = verify_code(user, code)
    if result.check is CodeCheck.THROTTLED:
        # The code was not compared: not an attempt.
        withdraw_login_attempt(attempt)
        LOGIN_FAILURES.labels("code_throttled").inc()
        return result
    if result.check is not CodeCheck.ACCEPTED:
        LOGIN_FAILURES.labels("bad_code").inc()
        return result
    mark_login_attempt_succeeded(attempt)
    after = {"second_factor": "recovery_code" if result.used_recovery_code else "totp"}
    if result.used_recovery_code:
        after["recovery_codes_left"] = recovery_codes_left(user)
    audit.record(actor=user, action="staff.login", obj=user, after=after)
    return result


def check_password_and_code(request, *, user: StaffUser, password: str, code: str) -> CodeResult:
    """Re-authenticate a signed-in user before a change to their second factor.

    The same lockout guards it as the login, recorded before the check in the same way: otherwise a borrowed
    session could guess the password here without limit (or, sending guesses together, past the limit). Raises
    ``LoginLockedOut``; a wrong password or code is a failed attempt, a right pair is not recorded (it is no
    login). The code is not tried when the password is wrong, so a right code is not spent on a refused request.
    """
    from abonent.core.middleware import client_ip

    attempt = begin_login_attempt(username=user.get_username(), ip_address=client_ip(request))
    if not user.check_password(password):
        return CodeResult(CodeCheck.WRONG)
    result = verify_code(user, code)
    if result.check is not CodeCheck.WRONG:
        withdraw_login_attempt(attempt)
    return result


@transaction.atomic
def do_start_two_factor_enrolment(user: StaffUser) -> TOTPDevice:
    """The unconfirmed authenticator ``user`` is setting up: the same one (and secret) until confirmed, so a
    reloaded page keeps showing the QR code already scanned."""
    StaffUser.objects.select_for_update().filter(pk=user.pk).first()
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def _new_recovery_codes(user: StaffUser) -> list[str]:
    """Replace the codes of ``user``'s recovery-code device, creating the device the first time.

    The device itself stays: a session verified by a recovery code is bound to it (django-otp keeps the device's
    id in the session), and deleting it signed such sessions out, starting with the one that had just been told
    to make a new set. Its back-off stays too: a new set is no reason to forget earlier wrong codes.
    """
    device = StaticDevice.objects.filter(user=user).order_by("pk").first()
    if device is None:
        device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    elif not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    StaticToken.objects.filter(device=device).delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@dataclass(frozen=True)
class Enrolment:
    result: CodeResult
    recovery_codes: list[str]


def do_confirm_two_factor(user: StaffUser, *, code: str) -> Enrolment:
    """Turn two-factor authentication on once the code from the authenticator being set up is right.

    Returns the recovery codes, which are shown once and never again (a new set replaces them). A wrong code
    changes nothing but the device's back-off.
    """
    code = normalise_code(code)
    # The check commits on its own: its back-off must survive a wrong code.
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("pk").first()
        result = _check_code(device, code)
    if result.check is not CodeCheck.ACCEPTED:
        return Enrolment(result, [])
    with transaction.atomic():
        locked = StaffUser.objects.select_for_update().get(pk=user.pk)
        if locked.two_factor_enabled:
            # Confirmed in another tab a moment ago: that tab showed the recovery codes.
            return Enrolment(CodeResult(CodeCheck.WRONG), [])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        locked.two_factor_enabled = user.two_factor_enabled = True
        locked.save(update_fields=["two_factor_enabled"])
        audit.record(
            actor=user,
            action="staff.two_factor_enabled",
            obj=user,
            after={"two_factor_enabled": True, "recovery_codes": RECOVERY_CODE_COUNT},
        )
    return Enrolment(CodeResult(CodeCheck.ACCEPTED, device=device), codes)


@transaction.atomic
def do_regenerate_recovery_codes(user: StaffUser, *, acting_user) -> list[str]:
    """A fresh set of recovery codes; the old ones stop working. Shown once, like the first set."""
    locked = StaffUser.objects.select_for_update().get(pk=user.pk)
    if not locked.two_factor_enabled:
        return []
    codes = _new_recovery_codes(user)
    audit.record(
        actor=acting_user,
        action="staff.recovery_codes_regenerated",
        obj=user,
        after={"recovery_codes": RECOVERY_CODE_COUNT},
    )
    return codes


@transaction.atomic
def do_reset_two_factor(user: StaffUser, *, acting_user, reason: str = "") -> bool:
    """Remove ``user``'s authenticator and recovery codes: by the user (after password and code), by an
    administrator for a lost phone, or by ``abonent reset_two_factor``.

    Sessions verified with the removed devices stop counting as verified (django-otp finds no device), so a
    required role is sent to enrol again on its next request. Returns whether there was anything to remove.
    """
    locked = StaffUser.objects.select_for_update().get(pk=user.pk)
    deleted_totp, _ = TOTPDevice.objects.filter(user=user).delete()
    deleted_static, _ = StaticDevice.objects.filter(user=user).delete()
    was_enabled = locked.two_factor_enabled
    if not (was_enabled or deleted_totp or deleted_static):
        return False
    locked.two_factor_enabled = user.two_factor_enabled = False
    locked.save(update_fields=["two_factor_enabled"])
    audit.record(
        actor=acting_user,
        action="staff.two_factor_reset",
        obj=user,
        before={"two_factor_enabled": was_enabled},
        after={"two_factor_enabled": False},
        reason=reason,
    )
    return True


# The password step of a login for a user with two-factor authentication leaves this in the session (the user is
# not logged in yet); the code step reads it. Short-lived, bound to the password it was started with.
PENDING_SESSION_KEY = "staff_2fa_pending"
PENDING_MAX_AGE = dt.timedelta(minutes=5)


def start_pending_login(request, user: StaffUser, *, next_url: str) -> None:
    # A new session key: whatever an attacker planted before the password step is not the key that logs in.
    request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user_id": user.pk,
        "backend": getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[0]),
        "auth_hash": user.get_session_auth_hash(),
        "started_at": clock.now().isoformat(),
        "next": next_url,
    }


def pending_login(request) -> tuple[StaffUser | None, dict]:
    """The user half-way through logging in on this session, or ``None`` when there is none (or it expired, the
    password changed meanwhile, or the user was deactivated)."""
    pending = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(pending, dict):
        return None, {}
    started_at = dt.datetime.fromisoformat(pending["started_at"])
    user = StaffUser.objects.filter(pk=pending["user_id"], is_active=True, is_service_account=False).first()
    if (
        user is None
        or clock.now() - started_at > PENDING_MAX_AGE
        or user.get_session_auth_hash() != pending["auth_hash"]
        or not user.two_factor_enabled
    ):
        clear_pending_login(request)
        return None, {}
    return user, pending


def clear_pending_login(request) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)
