"""The profile in the portal's API: contacts and consents (``/profile``), notification preferences
(``/notifications``), Telegram linking (``/telegram-link``, ``/telegram-chats/{id}``).

Changing the phone or e-mail (the ones login codes go to) needs ``current_password`` in the same request: without
it, or with a wrong one, a 422 on that field and nothing written. A new phone or e-mail is then proven with a code
sent to it: the ``PUT`` answers 202 ``{"confirmation": "code_sent", ...}`` and ``POST /profile/confirm`` with the
code makes the change. A ``PUT`` changes only the fields it carries (absent: as they are); repeating it is
harmless."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Field, Schema, Status
from pydantic import field_validator
from pydantic_core import PydanticCustomError

from abonent.api.errors import ApiError, ErrorOut
from abonent.core import clock
from abonent.notifications.telegram_link import TOKEN_TTL

from .. import profile_changes, profile_data
from . import router

ERRORS = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}


class MyContactOut(Schema):
    kind: str = Field(description="phone or email")
    value: str = Field(description="A phone in E.164 (+79161234567), an e-mail in lower case")


class MyPendingContactOut(Schema):
    kind: str = Field(description="phone or email")
    value: str = Field(description="The new phone (E.164) or e-mail the code was sent to")
    expires_at: dt.datetime = Field(description="The code works until then")


class MyProfileOut(Schema):
    account_number: str
    name: str
    phone: str = Field(description="Where SMS and login codes go (E.164); empty when none is on file")
    email: str = Field(description="Where e-mails and login codes go; empty when none")
    other_contacts: list[MyContactOut] = Field(description="Further contacts the staff keep; changed by the staff only")
    has_password: bool = Field(description="False: set one first (the security page) to change the phone or e-mail")
    consent_personal_data: bool = Field(description="Given with the contract; shown, not changed here")
    consent_personal_data_at: dt.datetime | None
    consent_marketing: bool = Field(description="Advertising messages wanted")
    consent_marketing_at: dt.datetime | None = Field(description="When the advertising consent last changed")
    pending_contacts: list[MyPendingContactOut] = Field(
        description="A new phone or e-mail waiting for the code sent to it (POST /profile/confirm)"
    )


class MyProfilePendingOut(MyProfileOut):
    confirmation: Literal["code_sent"] = Field(
        description="A code went to each new contact in pending_contacts; nothing changes until it is confirmed"
    )


class MyConfirmIn(Schema):
    code: str = Field(max_length=20, description="The code sent to the new phone or e-mail")


class MyProfileIn(Schema):
    phone: str | None = Field(
        None, max_length=30, description="A new phone; needs current_password, then the code sent to it"
    )
    email: str | None = Field(
        None,
        max_length=254,
        description='A new e-mail (needs current_password, then the code sent to it); "" for none (the password only)',
    )
    consent_marketing: bool | None = None
    current_password: str = Field("", max_length=128, description="Required when the phone or the e-mail changes")


class MyTelegramChatOut(Schema):
    id: int
    username: str
    linked_at: dt.datetime
    blocked: bool = Field(description="The chat blocked the bot: nothing is sent there until it allows it again")


class MyNotificationsOut(Schema):
    email: bool
    sms: bool
    telegram: bool
    language: str = Field(description="The language of messages; empty: the provider's default")
    quiet_from: dt.time | None = Field(description="No SMS or Telegram from this local time; null: the default hours")
    quiet_to: dt.time | None = Field(description="…until this one; equal to quiet_from: no quiet hours")
    telegram_chats: list[MyTelegramChatOut]


class MyNotificationsIn(Schema):
    """Only the fields sent change; an absent (or null) channel or language stays as it is."""

    email: bool | None = None
    sms: bool | None = None
    telegram: bool | None = None
    language: str | None = Field(None, max_length=5, description='ru, en or "" (the provider\'s default)')
    quiet_from: dt.time | None = Field(
        None, description="Local time, HH:MM, no UTC offset; null (sent) with quiet_to null: the default hours"
    )
    quiet_to: dt.time | None = None

    @field_validator("quiet_from", "quiet_to")
    @classmethod
    def _local(cls, value: dt.time | None) -> dt.time | None:
        # Quiet hours are the subscriber's local time (their time zone is the staff's setting): an offset would
        # be dropped silently on PostgreSQL and refused by SQLite.
        if value is not None and value.tzinfo is not None:
            raise PydanticCustomError("time_zone_aware", _("Give the time without a time zone, as HH:MM."))
        return value

    def changes(self) -> dict:
        """The fields to change: those sent and not null; quiet hours also when sent as null (back to default)."""
        sent = self.model_fields_set
        return {
            name: getattr(self, name)
            for name in sent
            if getattr(self, name) is not None or name in ("quiet_from", "quiet_to")
        }


class MyTelegramLinkOut(Schema):
    link: str = Field(description="https://t.me/<bot>?start=<token>: works once; open it and press Start")
    expires_at: dt.datetime
    qr_svg: str = Field(description="The link as a QR code, an SVG element")


def _profile(subscriber) -> dict:
    contacts = profile_data.contacts_of(subscriber)
    return {
        "account_number": subscriber.account_number,
        "name": subscriber.display_name,
        "phone": contacts.phone.value if contacts.phone else "",
        "email": contacts.email.value if contacts.email else "",
        "other_contacts": [{"kind": c.kind, "value": c.value} for c in contacts.others],
        "has_password": profile_data.has_password(subscriber),
        "consent_personal_data": subscriber.consent_personal_data,
        "consent_personal_data_at": subscriber.consent_personal_data_at,
        "consent_marketing": subscriber.consent_marketing,
        "consent_marketing_at": subscriber.consent_marketing_at,
        "pending_contacts": [
            {"kind": p.kind, "value": p.value, "expires_at": p.expires_at}
            for p in profile_data.pending_contacts(subscriber)
        ],
    }


def _notifications(subscriber) -> dict:
    preference = profile_data.preference_of(subscriber)
    values = {"email": True, "sms": True, "telegram": True, "language": "", "quiet_from": None, "quiet_to": None}
    if preference is not None:
        values = {name: getattr(preference, name) for name in values}
    chats = [
        {"id": c.pk, "username": c.username, "linked_at": c.linked_at, "blocked": c.blocked_at is not None}
        for c in profile_data.chats_of(subscriber)
    ]
    return {**values, "telegram_chats": chats}


@router.get("/profile", response={200: MyProfileOut, 401: ErrorOut}, summary="My contacts and consents")
def get_profile(request):
    return _profile(request.subscriber)


def _contact_refusal(exc: ValidationError):
    """Codes used up are a 429 (``too_many_codes``, on the contact's field); the rest stays a 422 on its field."""
    for name, errors in getattr(exc, "error_dict", {}).items():
        for error in errors:
            if error.code == "too_many_codes":
                message = " ".join(error.messages)
                return ApiError(429, error.code, message, [{"field": name, "code": error.code, "message": message}])
    return exc


@router.put(
    "/profile",
    response={200: MyProfileOut, 202: MyProfilePendingOut, **ERRORS},
    summary="Change my contacts or consents",
    description="200: changed. 202: a code went to the new phone or e-mail; confirm it with POST /profile/confirm.",
)
def put_profile(request, payload: MyProfileIn):
    subscriber = request.subscriber
    change = profile_changes.ContactChange()
    if payload.phone is not None or payload.email is not None:
        current = profile_data.contacts_of(subscriber)
        try:
            change = profile_changes.change_contacts(
                subscriber,
                phone=payload.phone if payload.phone is not None else (current.phone.value if current.phone else ""),
                email=payload.email if payload.email is not None else (current.email.value if current.email else ""),
                password=payload.current_password,
                request=request,
            )
        except ValidationError as exc:
            raise _contact_refusal(exc) from exc
    if payload.consent_marketing is not None:
        profile_changes.set_marketing_consent(subscriber, payload.consent_marketing)
    subscriber.refresh_from_db()
    if change.sent:
        return Status(202, {**_profile(subscriber), "confirmation": "code_sent"})
    return _profile(subscriber)


@router.post(
    "/profile/confirm",
    response={200: MyProfileOut, **ERRORS},
    summary="Confirm a new phone or e-mail with the code sent to it",
    description="422 on code: code_invalid (wrong; each code takes 5 tries), code_expired (no code is waiting).",
)
def confirm_profile_contact(request, payload: MyConfirmIn):
    profile_changes.confirm_contact(request.subscriber, payload.code)
    return _profile(request.subscriber)


@router.get("/notifications", response={200: MyNotificationsOut, 401: ErrorOut}, summary="My notification settings")
def get_notifications(request):
    return _notifications(request.subscriber)


@router.put("/notifications", response={200: MyNotificationsOut, **ERRORS}, summary="Change my notification settings")
def put_notifications(request, payload: MyNotificationsIn):
    profile_changes.save_preferences(request.subscriber, **payload.changes())
    return _notifications(request.subscriber)


@router.post("/telegram-link", response={201: MyTelegramLinkOut, **ERRORS}, summary="A link to the Telegram bot")
def post_telegram_link(request):
    try:
        link = profile_changes.telegram_link(request.subscriber)
    except ValidationError as exc:
        code = exc.error_list[0].code
        raise ApiError(409 if code == "telegram_not_configured" else 429, code, " ".join(exc.messages)) from exc
    return Status(201, {"link": link, "expires_at": clock.now() + TOKEN_TTL, "qr_svg": profile_data.qr_svg(link)})


@router.delete(
    "/telegram-chats/{chat_id}", response={204: None, **ERRORS}, summary="Unlink a Telegram chat from my account"
)
def delete_telegram_chat(request, chat_id: int):
    profile_changes.unlink_telegram(profile_data.own_chat(request, chat_id))
    return Status(204, None)
