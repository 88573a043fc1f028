"""The portal login's writes: signing in by password, setting a password with a one-time code, changing it,
ending sessions, and the staff's two buttons (send a login code, end all portal sessions).

Each refusal is an ``AuthRefused`` with a stable code, and nothing is written but the attempt that counts toward
a lock-out. A login that names nobody costs the same password hashing as one that names somebody, is counted the
same way and is refused with the same words: neither the answer nor its timing tells which logins exist.

The password and code checks run in autocommit (``lockout.begin`` must commit its row before checking, see
there); what they then write (a password, the revoked sessions, the code used) is one transaction.

A session is opened, and a password stored, under the lock of the subscriber's ``PortalAccount`` row, after
looking again that the password is still the one checked (``_locked_account``): a password change, a reset with
a code or "log out everywhere" takes the same lock before it ends the sessions, so a login whose check passed
just before the change committed cannot open a session just after it (or store its password over the new one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.core import audit, clock
from abonent.core.middleware import set_request_actor
from abonent.notifications.telegram_link import revoke_links
from abonent.staff.permissions import Perm, check_perm

from . import codes, errors, lockout, sessions
from .codes import CodeCheck, Sent
from .identify import Identified, identify
from .middleware import actor_label
from .models import CodeChannel, LoginAttempt, OneTimeCode, PortalAccount, PortalSession, SessionKind, ShownPreview

# Hashed for a login that names nobody (or has no password yet), so that answer takes as long as a real check.
_DUMMY_PASSWORD = "abonent-portal-no-such-login"  # noqa: S105 - hashed and thrown away, never compared
MAX_PASSWORD_LENGTH = 128


@dataclass(frozen=True)
class SignedIn:
    subscriber: object
    session: PortalSession
    secret: str  # the cookie's value or the app's token: handed out once, kept only as a hash


# --- signing in -----------------------------------------------------------------------------------------------


def _begin(identified: Identified, request, kind: str):
    try:
        return lockout.begin(identified.key, lockout.ip_of(request), kind=kind)
    except lockout.LockedOut as exc:
        raise errors.locked_out(exc.seconds) from None


def _locked_account(subscriber, password_hash: str) -> PortalAccount | None:
    """The subscriber's account row, locked till the end of the transaction, when its password is still
    ``password_hash`` (the one just checked); None when it changed since (or is gone)."""
    account = sessions.lock_account(subscriber.pk)
    if account is None or not password_hash or account.password != password_hash:
        return None
    return account


@transaction.atomic
def _open(subscriber, request, kind: str, *, password_hash: str) -> SignedIn:
    """Open a session for the password ``password_hash`` that was checked; ``invalid_credentials`` when it was
    changed meanwhile (see the module docstring)."""
    account = _locked_account(subscriber, password_hash)
    if account is None:
        raise errors.invalid_credentials()
    session, secret = sessions.open_session(subscriber, kind=kind, request=request)
    PortalAccount.objects.filter(pk=account.pk).update(last_login_at=clock.now())
    set_request_actor(actor_label(subscriber))
    return SignedIn(subscriber, session, secret)


def do_log_in(request, *, login: str, password: str, kind: str = SessionKind.WEB) -> SignedIn:
    """Open a session for the subscriber ``login`` names when ``password`` is theirs.

    Refuses with ``locked_out`` (before any check, even of the right password) while the login or the address
    has too many recent failures, ``ambiguous_login`` for a phone on several contracts, else
    ``invalid_credentials`` for everything wrong: an unknown login, a wrong password, no password set yet.
    """
    identified = identify(login)
    attempt = _begin(identified, request, "password")
    if identified.ambiguous:
        lockout.withdraw(attempt)
        raise errors.ambiguous_login()
    account = None
    if identified.subscriber is not None:
        account = PortalAccount.objects.filter(subscriber_id=identified.subscriber.pk).first()
    password = (password or "")[:MAX_PASSWORD_LENGTH]
    if account is None or not account.has_password:
        make_password(password or _DUMMY_PASSWORD)  # the same work as a real check
        raise errors.invalid_credentials()
    if not check_password(password, account.password):
        raise errors.invalid_credentials()
    # A password changed since the check leaves the attempt a failure: the password typed is wrong now.
    signed = _open(identified.subscriber, request, kind, password_hash=account.password)
    lockout.succeeded(attempt)
    return signed


# --- one-time codes ---------------------------------------------------------------------------------------------


def _take(identified: Identified, request, kind: str) -> None:
    try:
        lockout.take(identified.key, lockout.ip_of(request), kind=kind)
    except lockout.LockedOut as exc:
        raise errors.too_many_requests(exc.seconds) from None


def code_destinations(request, *, login: str) -> list[tuple[str, str, str]]:
    """Where a code for ``login`` could go, masked (``codes.masked_destinations``: made-up masks for a login that
    names nobody). Counted against the address's hourly allowance of lookups (``too_many_requests``): the masks
    hold two digits of a real phone, not to be collected for every account number."""
    identified = identify(login)
    _take(identified, request, lockout.LOOKUP)
    if identified.ambiguous:
        raise errors.ambiguous_login()
    return codes.masked_destinations(identified)


def do_request_code(request, *, login: str, channel: str) -> None:
    """Send a code to the contract's phone or e-mail of the subscriber ``login`` names, within the allowances.

    Answers the same (returns None) whether or not the login exists, has an address on ``channel`` or is within
    its allowance; only the address's own hourly allowance is told (``too_many_requests``): it says nothing
    about any login. ``ambiguous_login`` for a phone on several contracts (its owner typed it: no secret).
    """
    ip = lockout.ip_of(request)
    identified = identify(login)
    _take(identified, request, lockout.SEND)
    if identified.ambiguous:
        raise errors.ambiguous_login()
    if identified.subscriber is None or channel not in CodeChannel.values:
        return
    codes.issue_code(identified.subscriber, channel=channel, ip_address=ip)


class _Person:
    """What Django's password-similarity check compares a new password with: the account number, the name and
    the e-mail of the subscriber."""

    class _meta:  # the attribute Django's validator reads
        LABELS = {
            "username": gettext_lazy("account number"),
            "first_name": gettext_lazy("first name"),
            "last_name": gettext_lazy("last name"),
            "email": gettext_lazy("e-mail"),
        }

        @classmethod
        def get_field(cls, name):
            if name not in cls.LABELS:
                raise FieldDoesNotExist(name)
            return type("Field", (), {"verbose_name": cls.LABELS[name]})

    def __init__(self, subscriber):
        self.username = subscriber.account_number
        self.first_name = subscriber.first_name or subscriber.organization_name
        self.last_name = subscriber.last_name
        self.email = codes.destinations(subscriber.pk).get(CodeChannel.EMAIL, "")


def check_new_password(subscriber, password: str) -> None:
    """Django's password validators (length, common passwords, likeness to the account number or the name), as
    ``password_too_weak`` with each reason in ``fields``."""
    if len(password) > MAX_PASSWORD_LENGTH:
        message = _("A password can be at most %(count)d characters long.") % {"count": MAX_PASSWORD_LENGTH}
        raise errors.AuthRefused(
            "password_too_weak", message, fields=[{"field": "new_password", "code": "too_long", "message": message}]
        )
    try:
        validate_password(password, _Person(subscriber))
    except ValidationError as exc:
        fields = [
            {"field": "new_password", "code": error.code or "invalid", "message": " ".join(error.messages)}
            for error in exc.error_list
        ]
        raise errors.AuthRefused("password_too_weak", fields[0]["message"], fields=fields) from None


@transaction.atomic
def _store_password(
    subscriber, password: str, *, reason: str, keep: PortalSession | None = None, replacing: str | None = None
) -> str:
    """Store ``password`` (hashed; returned) and end every session but ``keep``, under the account row's lock.
    With ``replacing`` (the hash whose password the subscriber just typed), refuse ``password_wrong`` when the
    password changed since, and ``session_ended`` when ``keep`` ended meanwhile (see the module docstring)."""
    now = clock.now()
    PortalAccount.objects.get_or_create(subscriber=subscriber, defaults={"created_at": now})
    account = sessions.lock_account(subscriber.pk)
    if replacing is not None and account.password != replacing:
        raise errors.AuthRefused("password_wrong", _("The current password is wrong."))
    if keep is not None and not PortalSession.objects.filter(pk=keep.pk, revoked_at__isnull=True).exists():
        raise errors.session_ended()
    first = not account.has_password
    account.password = make_password(password)
    account.password_changed_at = now
    account.save(update_fields=["password", "password_changed_at"])
    sessions.revoke_all(subscriber, reason=reason, keep=keep)
    revoke_links(subscriber)  # a Telegram link seen by whoever knew the old password must not work either
    audit.record(
        actor=None,
        action="portal.password_set" if first else "portal.password_changed",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        reason=reason,
        actor_label=actor_label(subscriber),
    )
    return account.password


def do_set_password(subscriber, password: str, *, reason: str) -> None:
    """Set the subscriber's password (checked by the validators), ending every session: the demo's seed."""
    check_new_password(subscriber, password)
    _store_password(subscriber, password, reason=reason)


def do_reset_password(request, *, login: str, code: str, new_password: str, kind: str = SessionKind.WEB) -> SignedIn:
    """Set a password with the code sent to the contract's phone or e-mail (the first login, or a forgotten
    password), end every other session, and sign in.

    ``locked_out`` before any check while the login or address has too many failures (wrong codes count as
    wrong passwords do); ``code_invalid`` for a wrong code (or a login that names nobody), and only for the
    right code ``code_expired``, ``code_used`` or ``code_invalid`` (tried too often: ask for a new one);
    ``password_too_weak`` leaves the code unused.
    """
    identified = identify(login)
    attempt = _begin(identified, request, "code")
    if identified.ambiguous:
        lockout.withdraw(attempt)
        raise errors.ambiguous_login()
    digits = codes.clean_code(code)
    if not digits:
        lockout.withdraw(attempt)  # a typo in the shape of the code is not a guess
        raise errors.code_invalid(_("The code is %(digits)d digits.") % {"digits": codes.DIGITS})
    subscriber = identified.subscriber
    if subscriber is None:
        with transaction.atomic():
            codes.check_code(0, digits)  # the same work as a real check
        raise errors.code_invalid()
    with transaction.atomic():
        result, row = codes.check_code(subscriber.pk, digits)
    if result == CodeCheck.WRONG:
        raise errors.code_invalid()
    if result == CodeCheck.EXPIRED:
        raise errors.AuthRefused("code_expired", _("This code has expired. Ask for a new one."))
    if result == CodeCheck.USED:
        raise errors.AuthRefused("code_used", _("This code has already been used. Ask for a new one."))
    if result == CodeCheck.EXHAUSTED:
        raise errors.code_invalid(_("This code was tried too many times. Ask for a new one."))
    try:
        check_new_password(subscriber, new_password)
    except errors.AuthRefused:
        lockout.withdraw(attempt)
        raise
    with transaction.atomic():
        # Taken under the row's lock: of two submissions of the same code, the second finds it used.
        result, row = codes.check_code(subscriber.pk, digits)
        if result != CodeCheck.RIGHT:
            raise errors.AuthRefused("code_used", _("This code has already been used. Ask for a new one."))
        codes.use_code(row)
        stored = _store_password(subscriber, new_password, reason=_("Password set with a one-time code"))
        # In the same transaction, under the lock _store_password took: nothing can change it in between.
        signed = _open(subscriber, request, kind, password_hash=stored)
    lockout.succeeded(attempt)
    return signed


# --- the signed-in subscriber -------------------------------------------------------------------------------------


def do_change_password(session: PortalSession, *, current_password: str, new_password: str) -> None:
    """Change the password of ``session``'s subscriber, who types the current one (counted toward the lock-out
    as a login is); every other session ends, this one stays.

    The current password is checked outside any lock (hashing takes a while), and stored over only under the
    account row's lock, when the row still holds the password checked: a reset with a code (or another change)
    that committed in between wins, and this one is ``password_wrong``."""
    subscriber = session.subscriber
    attempt = _begin(Identified(key=f"sub:{subscriber.pk}", subscriber=subscriber), None, "password")
    account = PortalAccount.objects.filter(subscriber_id=subscriber.pk).first()
    if account is None or not account.has_password or not check_password(current_password or "", account.password):
        raise errors.AuthRefused("password_wrong", _("The current password is wrong."))
    lockout.succeeded(attempt)
    check_new_password(subscriber, new_password)
    _store_password(
        subscriber,
        new_password,
        reason=_("Password changed by the subscriber"),
        keep=session,
        replacing=account.password,
    )


def do_log_out(session: PortalSession) -> None:
    sessions.revoke_session(session)


def do_end_session(session: PortalSession) -> None:
    """End one of the subscriber's sessions (the security page's "end" button; the caller found it with
    ``access.own``)."""
    sessions.revoke_session(session)


def do_log_out_everywhere(subscriber) -> int:
    """End every session of the subscriber, this one included, and the Telegram links not used yet."""
    with transaction.atomic():
        revoke_links(subscriber)
        return sessions.revoke_all(subscriber, reason=_("Logged out everywhere by the subscriber"))


# --- the staff's buttons ------------------------------------------------------------------------------------------


def do_send_login_code(subscriber, *, acting_user) -> Sent:
    """Text the subscriber a code to set a password (the first-login invitation), audited. The subscriber's own
    allowances apply: the staff are told why nothing went out (no phone, sent a moment ago, the hourly limit)."""
    check_perm(acting_user, Perm.SUBSCRIBER_EDIT)
    with transaction.atomic():
        sent, _row = codes.issue_code(subscriber, channel=CodeChannel.SMS)
        if sent == Sent.SENT:
            audit.record(
                actor=acting_user,
                action="portal.code_sent",
                obj=subscriber,
                subscriber_id=subscriber.pk,
                after={"channel": CodeChannel.SMS.value},
            )
    return sent


def do_end_portal_sessions(subscriber, *, acting_user) -> int:
    """End every portal session and app token of the subscriber (a lost phone, a shared password), audited as
    the staff user's doing."""
    check_perm(acting_user, Perm.SUBSCRIBER_EDIT)
    with transaction.atomic():
        sessions.lock_account(subscriber.pk)  # as revoke_all: a login being opened ends too, or opens after
        live = PortalSession.objects.filter(subscriber_id=subscriber.pk, revoked_at__isnull=True)
        count = live.update(revoked_at=clock.now())
        revoke_links(subscriber)
        audit.record(
            actor=acting_user,
            action="portal.sessions_revoked",
            obj=subscriber,
            subscriber_id=subscriber.pk,
            after={"sessions": count},
            reason=_("Ended by staff"),
        )
    return count


def do_prune_login_records(*, attempts_older_than, codes_older_than, previews_older_than=dt.timedelta(days=7)) -> int:
    """Delete login attempts and one-time codes too old to count toward any limit, and the previews an app was
    shown long ago (``as_seen``: a confirmation without one compares the amount it sends back); returns the rows
    deleted."""
    now = clock.now()
    attempts, _ = LoginAttempt.objects.filter(attempted_at__lt=now - attempts_older_than).delete()
    old_codes, _ = OneTimeCode.objects.filter(created_at__lt=now - codes_older_than).delete()
    previews, _ = ShownPreview.objects.filter(shown_at__lt=now - previews_older_than).delete()
    return attempts + old_codes + previews
