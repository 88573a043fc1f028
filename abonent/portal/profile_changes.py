"""The profile's changes, shared by the page and the API: each calls the owning app's action with
``acting_user=None`` (the subscriber, ADR 0017).

Changing the phone or e-mail that login codes go to takes the current portal password in the same request: a
session left open on a shared computer must not be enough to take the account over. Wrong passwords here are
counted like the login's (``LoginAttempt``) and lock this form for ``ABONENT_PORTAL_LOCKOUT_SECONDS`` after
``ABONENT_PORTAL_MAX_FAILURES``.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.core.middleware import client_ip
from abonent.notifications.actions import PreferenceData, do_update_preferences
from abonent.notifications.telegram_link import issue_link, unlink_chat
from abonent.subscribers.actions import clean_contact, do_add_contact, do_remove_contact, do_update_subscriber
from abonent.subscribers.models import ContactKind

from . import profile_data
from .models import LoginAttempt, PortalAccount

PASSWORD_FIELD = "current_password"  # noqa: S105 - a field name


def _identifier(subscriber) -> str:
    return f"profile:{subscriber.pk}"


def _password_error(message: str, code: str) -> ValidationError:
    return ValidationError({PASSWORD_FIELD: ValidationError(message, code=code)})


def check_current_password(subscriber, raw: str, *, request=None) -> None:
    """Nothing when ``raw`` is the subscriber's portal password; else a ValidationError on ``current_password``:
    ``password_required``, ``password_not_set``, ``password_wrong`` (counted) or ``too_many_attempts``."""
    now = clock.now()
    since = now - dt.timedelta(seconds=settings.ABONENT_PORTAL_LOCKOUT_SECONDS)
    failures = LoginAttempt.objects.filter(identifier=_identifier(subscriber), succeeded=False, attempted_at__gte=since)
    if failures.count() >= settings.ABONENT_PORTAL_MAX_FAILURES:
        raise _password_error(
            _("Too many wrong passwords. Try again in %(minutes)s minutes.")
            % {"minutes": max(1, settings.ABONENT_PORTAL_LOCKOUT_SECONDS // 60)},
            "too_many_attempts",
        )
    if not raw:
        raise _password_error(_("Enter your current password to change the phone or e-mail."), "password_required")
    account = PortalAccount.objects.filter(subscriber_id=subscriber.pk).first()
    if account is None or not account.password:
        raise _password_error(
            _("Set a password first (Security), then change the phone or e-mail."), "password_not_set"
        )
    if not check_password(raw, account.password):
        LoginAttempt.objects.create(
            identifier=_identifier(subscriber),
            ip_address=client_ip(request) if request is not None else None,
            attempted_at=now,
            succeeded=False,
            kind="profile",
        )
        raise _password_error(_("The current password is wrong."), "password_wrong")


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


def change_contacts(subscriber, *, phone: str, email: str, password: str, request=None) -> bool:
    """Make ``phone`` and ``email`` (empty: none) the ones messages and codes go to; True when anything changed.
    Nothing changes without the current password (``check_current_password``), and nothing is checked when
    nothing would change."""
    phone, email = _clean_contacts(phone, email)
    current = profile_data.contacts_of(subscriber)
    phone_changes = current.phone is None or current.phone.value != phone
    email_changes = (current.email.value if current.email else "") != email
    if not (phone_changes or email_changes):
        return False
    # Outside the transaction below: a wrong password's count must stay when the change is refused.
    check_current_password(subscriber, password, request=request)
    with transaction.atomic():
        if phone_changes:
            _replace(subscriber, ContactKind.PHONE, current.phone, phone)
        if email_changes:
            _replace(subscriber, ContactKind.EMAIL, current.email, email)
    return True


def set_marketing_consent(subscriber, consent: bool) -> bool:
    """Advertising messages on or off (the time of the change is kept with it); True when it changed."""
    if bool(consent) == subscriber.consent_marketing:
        return False
    do_update_subscriber(
        subscriber, changes={"consent_marketing": bool(consent)}, acting_user=None, reason=_("In the personal account")
    )
    subscriber.refresh_from_db(fields=["consent_marketing", "consent_marketing_at"])
    return True


def save_preferences(
    subscriber, *, email: bool, sms: bool, telegram: bool, language: str, quiet_from, quiet_to
) -> None:
    """The channels, language and quiet hours; the time zone (set by the staff) is kept."""
    current = profile_data.preference_of(subscriber)
    data = PreferenceData(
        email=email,
        sms=sms,
        telegram=telegram,
        language=language or "",
        time_zone=current.time_zone if current else "",
        quiet_from=quiet_from,
        quiet_to=quiet_to,
    )
    do_update_preferences(subscriber, data, acting_user=None)


def telegram_link(subscriber) -> str:
    """A fresh one-time link to the bot; ``telegram_not_configured`` or ``too_many_links`` refused."""
    if not profile_data.telegram_available():
        raise ValidationError(_("Telegram messages are not available."), code="telegram_not_configured")
    if profile_data.telegram_links_in_the_last_hour(subscriber) >= profile_data.TELEGRAM_LINKS_PER_HOUR:
        raise ValidationError(_("Too many links asked for. Try again in an hour."), code="too_many_links")
    return issue_link(subscriber, acting_user=None)


def unlink_telegram(chat) -> None:
    unlink_chat(chat, acting_user=None)
