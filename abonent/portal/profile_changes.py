"""The profile's changes, shared by the page and the API: each calls the owning app's action with
``acting_user=None`` (the subscriber, ADR 0017).

Changing the phone or e-mail that login codes go to takes two proofs. The current portal password, in the same
request: a session left open on a shared computer must not be enough to take the account over. And a one-time
code sent to the *new* phone or e-mail (``codes.issue_code``, ``CONFIRM_CONTACT``): without it anyone could put
another subscriber's number on their contract, after which that number names two contracts and its owner can no
longer sign in with it, and this subscriber's SMS go to them. Emptying the e-mail, or making primary a contact the
staff already keep, needs the password only.

A wrong password here counts in the same per-subscriber lock-out as the login and the password change
(``lockout.begin`` with ``sub:<id>``): whoever sits at an open session gets ``ABONENT_PORTAL_MAX_FAILURES``
guesses in all, not that many per form. The attempt is written before the password is checked, so guesses sent at
once cannot slip under the limit together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from abonent.notifications.actions import PreferenceData, do_update_preferences
from abonent.notifications.telegram_link import issue_link, unlink_chat
from abonent.subscribers.actions import clean_contact, do_add_contact, do_remove_contact, do_update_subscriber
from abonent.subscribers.models import ContactKind, Subscriber

from . import codes, lockout, profile_data
from .codes import CodeCheck, Sent
from .models import CodeChannel, CodePurpose, PortalAccount

PASSWORD_FIELD = "current_password"  # noqa: S105 - a field name
CODE_FIELD = "code"
_CHANNEL_OF = {ContactKind.PHONE: CodeChannel.SMS, ContactKind.EMAIL: CodeChannel.EMAIL}
_KIND_OF = {CodeChannel.SMS: ContactKind.PHONE, CodeChannel.EMAIL: ContactKind.EMAIL}


def _password_error(message: str, code: str) -> ValidationError:
    return ValidationError({PASSWORD_FIELD: ValidationError(message, code=code)})


def check_current_password(subscriber, raw: str, *, request=None) -> None:
    """Nothing when ``raw`` is the subscriber's portal password; else a ValidationError on ``current_password``:
    ``password_required``, ``password_not_set``, ``password_wrong`` (counted) or ``too_many_attempts``.

    Runs in autocommit, outside ``transaction.atomic``: the attempt's row must be committed, and seen by the
    guesses sent with it, before the password is checked (``lockout``)."""
    if not raw:
        raise _password_error(_("Enter your current password to change the phone or e-mail."), "password_required")
    try:
        attempt = lockout.begin(f"sub:{subscriber.pk}", lockout.ip_of(request), kind="password")
    except lockout.LockedOut as exc:
        raise _password_error(
            ngettext(
                "Too many wrong passwords. Try again in %(minutes)s minute.",
                "Too many wrong passwords. Try again in %(minutes)s minutes.",
                exc.minutes,
            )
            % {"minutes": exc.minutes},
            "too_many_attempts",
        ) from None
    account = PortalAccount.objects.filter(subscriber_id=subscriber.pk).first()
    if account is None or not account.password:
        lockout.withdraw(attempt)  # nothing was guessed
        raise _password_error(
            _("Set a password first (Security), then change the phone or e-mail."), "password_not_set"
        )
    if not check_password(raw, account.password):
        raise _password_error(_("The current password is wrong."), "password_wrong")  # the failure stays written
    lockout.succeeded(attempt)


def _clean_contacts(phone: str, email: str) -> tuple[str, str]:
    errors = {}
    phone, email = (phone or "").strip(), (email or "").strip()
    if not phone:
        errors["phone"] = ValidationError(
            _("Enter a phone number: we call it when something is wrong."), code="required"
        )
    else:
        try:
            phone = clean_contact(ContactKind.PHONE, phone)
        except ValidationError as exc:
            errors["phone"] = exc
    if email:
        try:
            email = clean_contact(ContactKind.EMAIL, email)
        except ValidationError as exc:
            errors["email"] = exc
    if errors:
        raise ValidationError(errors)
    return phone, email


def _lock_subscriber(subscriber) -> None:
    # Two changes at once (two tabs, a double tap) one after the other: each reads the contacts the other left.
    Subscriber.objects.select_for_update().filter(pk=subscriber.pk).values_list("pk", flat=True).get()


def _changes(subscriber, phone: str, email: str) -> dict[str, tuple]:
    """``{kind: (the current contact or None, the new value)}`` for the kinds that would change."""
    current = profile_data.contacts_of(subscriber)
    changes = {}
    if current.phone is None or current.phone.value != phone:
        changes[ContactKind.PHONE] = (current.phone, phone)
    if (current.email.value if current.email else "") != email:
        changes[ContactKind.EMAIL] = (current.email, email)
    return changes


def _replace(subscriber, kind: str, old, new: str) -> None:
    if old is not None:
        do_remove_contact(old, acting_user=None)
    if not new:
        return
    # The same value kept by the staff as another (not primary) contact becomes the primary one.
    for duplicate in subscriber.contacts.filter(kind=kind, value=new):
        do_remove_contact(duplicate, acting_user=None)
    do_add_contact(
        subscriber, kind=kind, value=new, is_primary=True, comment=old.comment if old else "", acting_user=None
    )


def _refused_send(kind: str, sent: Sent) -> ValidationError:
    if sent == Sent.TOO_SOON:
        message = _("A code was sent a moment ago. Wait a minute before asking for another.")
    else:
        message = _("Too many codes asked for in the last hour. Try again later.")
    return ValidationError({kind: ValidationError(message, code="too_many_codes")})


@dataclass
class ContactChange:
    """What a contacts form did: ``changed`` (written now) and ``sent`` (new contacts waiting for their code)."""

    changed: bool = False
    sent: list[profile_data.PendingContact] = field(default_factory=list)


def change_contacts(subscriber, *, phone: str, email: str, password: str, request=None) -> ContactChange:
    """Make ``phone`` and ``email`` (empty: none) the ones messages and codes go to.

    Nothing changes without the current password (``check_current_password``), and nothing is checked when nothing
    would change. A new phone or e-mail is not written: a code goes to it (``sent``), and ``confirm_contact`` with
    that code makes it the contact. Emptying the e-mail, or choosing a contact the staff already keep, is written
    at once (``changed``). ``too_many_codes`` on the field when its codes are used up (nothing written)."""
    phone, email = _clean_contacts(phone, email)
    if not _changes(subscriber, phone, email):
        return ContactChange()
    # Outside the transaction below: a wrong password's count must stay when the change is refused.
    check_current_password(subscriber, password, request=request)
    result = ContactChange()
    with transaction.atomic():
        _lock_subscriber(subscriber)
        kept = {(c.kind, c.value) for c in profile_data.contacts_of(subscriber).others}
        for kind, (old, new) in _changes(subscriber, phone, email).items():
            if not new or (kind, new) in kept:
                _replace(subscriber, kind, old, new)
                result.changed = True
                continue
            sent, row = codes.issue_code(
                subscriber,
                channel=_CHANNEL_OF[kind],
                ip_address=lockout.ip_of(request),
                purpose=CodePurpose.CONFIRM_CONTACT,
                address=new,
            )
            if sent != Sent.SENT:
                raise _refused_send(kind, sent)
            result.sent.append(profile_data.PendingContact(kind, new, row.expires_at))
    return result


def _code_error(message: str, code: str) -> ValidationError:
    return ValidationError({CODE_FIELD: ValidationError(message, code=code)})


def confirm_contact(subscriber, code: str) -> profile_data.PendingContact:
    """Make the new phone or e-mail that ``code`` was sent to the subscriber's contact; returns which. Refused on
    ``code``: ``code_invalid`` (wrong, counted against the live codes' tries), ``code_expired`` (no code waiting:
    expired, used or tried too often)."""
    digits = codes.clean_code(code)
    if not digits:
        raise _code_error(_("The code is %(digits)d digits.") % {"digits": codes.DIGITS}, "code_invalid")
    # Committed whatever the answer: a wrong code's try must stay counted.
    with transaction.atomic():
        _lock_subscriber(subscriber)
        result, row = codes.check_contact_code(subscriber.pk, digits)
    if result == CodeCheck.WRONG:
        raise _code_error(_("Wrong code. Check it, or change the contact again for a new one."), "code_invalid")
    if result != CodeCheck.RIGHT:
        raise _code_error(
            _("No code is waiting: it has expired or was used. Change the contact again for a new one."),
            "code_expired",
        )
    with transaction.atomic():
        _lock_subscriber(subscriber)
        # Under the lock: of two submissions of the same code, the second finds it used.
        if not codes.live_contact_codes(subscriber.pk, lock=True).filter(pk=row.pk).exists():
            raise _code_error(_("This code has already been used."), "code_expired")
        codes.use_code(row)
        kind = _KIND_OF[row.channel]
        current = profile_data.contacts_of(subscriber)
        old = current.phone if kind == ContactKind.PHONE else current.email
        if old is None or old.value != row.address:
            _replace(subscriber, kind, old, row.address)
    return profile_data.PendingContact(kind, row.address, row.expires_at)


def set_marketing_consent(subscriber, consent: bool) -> bool:
    """Advertising messages on or off (the time of the change is kept with it); True when it changed."""
    if bool(consent) == subscriber.consent_marketing:
        return False
    do_update_subscriber(
        subscriber, changes={"consent_marketing": bool(consent)}, acting_user=None, reason=_("In the personal account")
    )
    subscriber.refresh_from_db(fields=["consent_marketing", "consent_marketing_at"])
    return True


PREFERENCE_NAMES = ("email", "sms", "telegram", "language", "quiet_from", "quiet_to")


def save_preferences(subscriber, **changes) -> None:
    """The channels (``email``, ``sms``, ``telegram``), ``language`` and quiet hours (``quiet_from``,
    ``quiet_to``): those given change, the others stay as they are; the time zone (set by the staff) is kept."""
    unknown = set(changes) - set(PREFERENCE_NAMES)
    if unknown:
        raise TypeError(f"unknown preferences: {sorted(unknown)}")
    current = profile_data.preference_of(subscriber)
    values = {name: getattr(current, name) for name in PREFERENCE_NAMES} if current else {}
    values.update(changes)
    data = PreferenceData(**values, time_zone=current.time_zone if current else "")
    data.language = data.language or ""
    do_update_preferences(subscriber, data, acting_user=None)


def telegram_link(subscriber) -> str:
    """A fresh one-time link to the bot; ``telegram_not_configured`` or ``too_many_links`` refused. The count of
    the last hour's links and the new link are one transaction under the subscriber's row lock, so links asked for
    at once are counted one after the other."""
    if not profile_data.telegram_available():
        raise ValidationError(_("Telegram messages are not available."), code="telegram_not_configured")
    with transaction.atomic():
        _lock_subscriber(subscriber)
        if profile_data.telegram_links_in_the_last_hour(subscriber) >= profile_data.TELEGRAM_LINKS_PER_HOUR:
            raise ValidationError(_("Too many links asked for. Try again in an hour."), code="too_many_links")
        return issue_link(subscriber, acting_user=None)


def unlink_telegram(chat) -> None:
    unlink_chat(chat, acting_user=None)
