"""Writes of the staff app: users, login attempts, API tokens."""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth import authenticate
from django.db import transaction

from abonent.core import audit, clock

from .models import ApiToken, LoginAttempt, StaffUser, hash_token
from .permissions import Role
from .selectors import login_lockout_remaining


@transaction.atomic
def do_create_staff_user(
    *,
    username: str,
    password: str | None,
    role: str = Role.OPERATOR,
    full_name: str = "",
    email: str = "",
    branch_ids: list[int] | None = None,
    is_service_account: bool = False,
    acting_user=None,
) -> StaffUser:
    user = StaffUser.objects.create_user(
        username,
        password,
        role=role,
        full_name=full_name,
        email=email,
        is_service_account=is_service_account,
    )
    if branch_ids:
        user.branches.set(branch_ids)
    audit.record(
        actor=acting_user,
        action="staff.user_created",
        obj=user,
        after={
            **audit.snapshot(user, ["username", "role", "full_name", "is_service_account"]),
            "branches": sorted(branch_ids or []),
        },
    )
    return user


class LoginLockedOut(Exception):
    def __init__(self, seconds: int):
        super().__init__(seconds)
        self.seconds = seconds


def do_login(request, *, username: str, password: str) -> StaffUser | None:
    """Check a console login, refusing early while the login or address is locked out.

    Returns the user, or ``None`` for wrong credentials; raises ``LoginLockedOut`` during a lockout. The
    attempt is recorded either way, and a lockout does not even run the (deliberately slow) argon2 check.
    Except a right password of a user with two-factor authentication: that login succeeds only at the code
    step (``two_factor.do_verify_login_code``), which records it. Recording the password as a success would
    reset the failure count, and knowing the password would allow unlimited guesses at the code.
    """
    from abonent.core.metrics import LOGIN_FAILURES
    from abonent.core.middleware import client_ip

    ip = client_ip(request)
    username = (username or "").strip()[:150]
    remaining = login_lockout_remaining(username=username, ip_address=ip)
    if remaining:
        LOGIN_FAILURES.labels("locked_out").inc()
        raise LoginLockedOut(remaining)
    user = authenticate(request, username=username, password=password)
    if user is not None and user.two_factor_enabled:
        return user
    LoginAttempt.objects.create(username=username, ip_address=ip, attempted_at=clock.now(), succeeded=user is not None)
    if user is None:
        LOGIN_FAILURES.labels("bad_credentials").inc()
        return None
    audit.record(actor=user, action="staff.login", obj=user)
    return user


@transaction.atomic
def do_create_api_token(
    *, user: StaffUser, name: str, expires_at: dt.datetime | None = None, acting_user=None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is never stored and never shown again."""
    prefix = secrets.token_hex(4)
    plaintext = f"abn_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        token_hash=hash_token(plaintext),
        created_at=clock.now(),
        expires_at=expires_at,
    )
    audit.record(
        actor=acting_user,
        action="staff.api_token_created",
        obj=token,
        after={"user": user.pk, "name": name, "prefix": prefix},
    )
    return token, plaintext


@transaction.atomic
def do_revoke_api_token(*, token: ApiToken, acting_user=None, reason: str = "") -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor=acting_user, action="staff.api_token_revoked", obj=token, reason=reason)
    return token


def touch_api_token(token: ApiToken) -> None:
    """Record use at most once a minute: a busy integration must not write a row per request."""
    moment = clock.now()
    if token.last_used_at is None or moment - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=moment)
        token.last_used_at = moment


def do_prune_login_attempts(*, older_than: dt.timedelta = dt.timedelta(days=30)) -> int:
    deleted, _ = LoginAttempt.objects.filter(attempted_at__lt=clock.now() - older_than).delete()
    return deleted
