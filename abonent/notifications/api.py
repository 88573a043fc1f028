"""REST API of notifications: a subscriber's notification log (newest first, by cursor) and their notification
preferences. Branch-scoped as every subscriber endpoint is: a subscriber of another branch is a 404.

Reading needs NOTIFICATION_VIEW; changing the preferences needs SUBSCRIBER_EDIT. The ``PUT`` takes the whole
preferences each time (a repeat is harmless) and accepts an optional ``Idempotency-Key``. A refusal is a 422
whose ``fields`` carry the codes (``language_invalid``, ``time_zone_invalid``, ``quiet_hours_half``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Query, Router, Schema

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import idempotent
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from . import actions, selectors
from .calculations import mask_address, shown_text
from .models import Channel, Event, MessageStatus

router = Router(tags=["notifications"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class NotificationOut(Schema):
    id: int
    event: str
    channel: str = Field(description="email, sms, telegram; empty for a notice with no address at all")
    address: str = Field(description="Partly masked")
    status: str
    error: str = Field(description="A stable code: no_address, channel_off, no_consent, closed, or the provider's")
    error_text: str
    subject: str
    body: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    finished_at: dt.datetime | None
    bulk_id: int | None


class NotificationPageOut(Schema):
    items: list[NotificationOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null on the last one")


class NotificationParams(Schema):
    status: Literal[tuple(MessageStatus.values)] | None = None  # type: ignore[valid-type]
    channel: Literal[tuple(Channel.values)] | None = None  # type: ignore[valid-type]
    event: Literal[tuple(Event.values)] | None = None  # type: ignore[valid-type]
    limit: int = Field(50, ge=1, le=500)
    cursor: str = Field("", max_length=200, description="From the previous page's next_cursor")


class PreferencesOut(Schema):
    email: bool
    sms: bool
    telegram: bool
    language: str = Field(description="Empty: the installation's")
    time_zone: str = Field(description="An IANA name; empty: the branch's")
    quiet_from: dt.time | None = Field(description="Null: the default quiet hours (ABONENT_QUIET_HOURS)")
    quiet_to: dt.time | None
    updated_at: dt.datetime | None


class PreferencesIn(Schema):
    email: bool = True
    sms: bool = True
    telegram: bool = True
    language: str = Field("", max_length=5)
    time_zone: str = Field("", max_length=64)
    quiet_from: dt.time | None = None
    quiet_to: dt.time | None = None


def _subscriber(request, subscriber_id: int, perm: Perm):
    check_perm(request.user, perm)
    return get_subscriber(request.user, subscriber_id)


def _message(m) -> dict:
    return {
        "id": m.pk,
        "event": m.event,
        "channel": m.channel,
        "address": mask_address(m.channel, m.address),
        "status": m.status,
        "error": m.error,
        "error_text": selectors.explain_error(m.error, m.error_detail) if m.error else "",
        # A portal login code is hidden from the staff (calculations.shown_text).
        "subject": shown_text(m.event, m.subject),
        "body": shown_text(m.event, m.body),
        "attempts": m.attempts,
        "created_at": m.created_at,
        "next_attempt_at": m.next_attempt_at,
        "sent_at": m.sent_at,
        "finished_at": m.finished_at,
        "bulk_id": m.bulk_id,
    }


@router.get(
    "/subscribers/{subscriber_id}/notifications",
    response={200: NotificationPageOut, **ERRORS},
    summary="A subscriber's notification log, newest first",
)
def list_notifications(request, subscriber_id: int, params: Query[NotificationParams]):
    subscriber = _subscriber(request, subscriber_id, Perm.NOTIFICATION_VIEW)
    filters = selectors.MessageFilters(
        subscriber_id=subscriber.pk, status=params.status or "", channel=params.channel or "", event=params.event or ""
    )
    page = selectors.message_page(
        selectors.filtered_messages(request.user, filters), limit=params.limit, cursor=params.cursor
    )
    return {"items": [_message(m) for m in page.items], "next_cursor": page.next_cursor}


def _preferences(subscriber) -> dict:
    preference = selectors.preference_of(subscriber)
    if preference is None:
        return {**PreferencesIn().model_dump(), "updated_at": None}
    return preference


@router.get(
    "/subscribers/{subscriber_id}/notification-preferences",
    response={200: PreferencesOut, **ERRORS},
    summary="How a subscriber wants to be notified",
)
def get_preferences(request, subscriber_id: int):
    return _preferences(_subscriber(request, subscriber_id, Perm.NOTIFICATION_VIEW))


def _may_change(request, subscriber_id: int, **_kwargs) -> None:
    _subscriber(request, subscriber_id, Perm.SUBSCRIBER_EDIT)


@router.put(
    "/subscribers/{subscriber_id}/notification-preferences",
    response={200: PreferencesOut, **ERRORS},
    summary="Set how a subscriber wants to be notified (the whole preferences)",
)
@idempotent(200, access=_may_change)
def put_preferences(request, subscriber_id: int, payload: PreferencesIn):
    subscriber = _subscriber(request, subscriber_id, Perm.SUBSCRIBER_EDIT)
    preference = actions.do_update_preferences(
        subscriber, actions.PreferenceData(**payload.model_dump()), acting_user=request.user
    )
    return PreferencesOut.from_orm(preference).model_dump()
