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


def begin_login_attempt(*, username: str, ip_address: str | None) -> LoginAttempt:
    """Record an attempt on ``username`` as failed *before* checking it; refuse it unchecked (``LoginLockedOut``,
    leaving no row) when the lockout already counts enough other failures of the login or the address.

    Recording first makes the limit hold for attempts that arrive together. Reading the lockout, running the
    (deliberately slow) argon2 check and only then writing the attempt let twenty parallel guesses through a limit
    of 5 (9 to 12 of them): none saw the others. Now each row is committed before its attempt counts the rows
    committed before it, and the row of a failed check is never removed, so the k-th failed check counted the k - 1
    before it: no more than the limit get checked, on PostgreSQL and SQLite alike, with no lock held (or waited for)
    through the hashing. Hence it must run in autocommit, outside ``atomic``: the row must be visible to the others.

    The caller settles the attempt: a failure stays as recorded, a success is marked
    (``mark_login_attempt_succeeded``), and one that proved nothing is removed (``withdraw_login_attempt``).
    """
    attempt = LoginAttempt.objects.create(
        username=username, ip_address=ip_address, attempted_at=clock.now(), succeeded=False
    )
    remaining = login_lockout_remaining(username=username, ip_address=ip_address, excluding=attempt)
    if remaining:
        # Not an attempt: refused requests must not lengthen the lockout they ran into.
        withdraw_login_attempt(attempt)
        raise LoginLockedOut(remaining)
    return attempt


def mark_login_attempt_succeeded(attempt: LoginAttempt) -> None:
    LoginAttempt.objects.filter(pk=attempt.pk).update(succeeded=True)
    attempt.succeeded = True


def withdraw_login_attempt(attempt: LoginAttempt) -> None:
    """Forget an attempt that was neither a failure nor a login (refused unchecked, or the password of a user who
    still has to type a code)."""
    LoginAttempt.objects.filter(pk=attempt.pk).delete()


def do_login(request, *, username: str, password: str) -> StaffUser | None:
    """Check a console login, refusing early while the login or address is locked out.

    Returns the user, or ``None`` for wrong credentials; raises ``LoginLockedOut`` during a lockout. The
    attempt is recorded either way (before the check: ``begin_login_attempt``), and a lockout does not even run
    the (deliberately slow) argon2 check. Except a right password of a user with two-factor authentication: that
    login succeeds only at the code step (``two_factor.do_verify_login_code``), which records it. Recording the
    password as a success would reset the failure count, and knowing the password would allow unlimited guesses
    at the code.
    """
    from abonent.core.metrics import LOGIN_FAILURES
    from abonent.core.middleware import client_ip

    ip = client_ip(request)
    username = (username or "").strip()[:150]
    try:
        attempt = begin_login_attempt(username=username, ip_address=ip)
    except LoginLockedOut:
        LOGIN_FAILURES.labels("locked_out").inc()
        raise
    user = authenticate(request, username=username, password=password)
    if user is None:
        LOGIN_FAILURES.labels("bad_credentials").inc()
        return None
    if user.two_factor_enabled:
        withdraw_login_attempt(attempt)
        return user
    mark_login_attempt_succeeded(attempt)
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
