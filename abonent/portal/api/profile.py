"""The profile in the portal's API: contacts and consents (``/profile``), notification preferences
(``/notifications``), Telegram linking (``/telegram-link``, ``/telegram-chats/{id}``).

Changing the phone or e-mail (the ones login codes go to) needs ``current_password`` in the same request: without
it, or with a wrong one, a 422 on that field and nothing written. A ``PUT`` changes only the fields it carries
(``null`` or absent: as they are); repeating it is harmless."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from ninja import Field, Schema, Status

from abonent.api.errors import ApiError, ErrorOut
from abonent.core import clock
from abonent.notifications.telegram_link import TOKEN_TTL

from .. import profile_changes, profile_data
from . import router

ERRORS = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}


class MyContactOut(Schema):
    kind: str = Field(description="phone or email")
    value: str = Field(description="A phone in E.164 (+79161234567), an e-mail in lower case")


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


class MyProfileIn(Schema):
    phone: str | None = Field(None, max_length=30, description="A new phone; needs current_password")
    email: str | None = Field(None, max_length=254, description='A new e-mail ("" for none); needs current_password')
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
    email: bool = True
    sms: bool = True
    telegram: bool = True
    language: str = Field("", max_length=5, description="ru, en or empty")
    quiet_from: dt.time | None = None
    quiet_to: dt.time | None = None


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


@router.put("/profile", response={200: MyProfileOut, **ERRORS}, summary="Change my contacts or consents")
def put_profile(request, payload: MyProfileIn):
    subscriber = request.subscriber
    if payload.phone is not None or payload.email is not None:
        current = profile_data.contacts_of(subscriber)
        profile_changes.change_contacts(
            subscriber,
            phone=payload.phone if payload.phone is not None else (current.phone.value if current.phone else ""),
            email=payload.email if payload.email is not None else (current.email.value if current.email else ""),
            password=payload.current_password,
            request=request,
        )
    if payload.consent_marketing is not None:
        profile_changes.set_marketing_consent(subscriber, payload.consent_marketing)
    subscriber.refresh_from_db()
    return _profile(subscriber)


@router.get("/notifications", response={200: MyNotificationsOut, 401: ErrorOut}, summary="My notification settings")
def get_notifications(request):
    return _notifications(request.subscriber)


@router.put("/notifications", response={200: MyNotificationsOut, **ERRORS}, summary="Change my notification settings")
def put_notifications(request, payload: MyNotificationsIn):
    profile_changes.save_preferences(request.subscriber, **payload.dict())
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
