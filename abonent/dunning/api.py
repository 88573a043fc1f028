"""REST API of dunning, mounted under ``/api/v1/``: a subscriber's access state and its history, staff changes of
access (block, unblock, terminate, reinstate), the queue of subscribers not active, exemptions, the rules.

Access as elsewhere: a permission missing is a 403; a subscriber of another branch is a 404 (its existence is not
confirmed). Writes accept an ``Idempotency-Key``: a retry gets the first answer instead of "already blocked"."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal
from typing import Literal

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from abonent.api.errors import ApiError, ErrorOut
from abonent.api.idempotency import idempotent
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.models import SubscriberGroup
from abonent.subscribers.selectors import get_subscriber

from . import actions, selectors
from .models import AccessState, Exemption

router = Router(tags=["dunning"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
# 503 ``access_busy``: the subscriber's state row was held by another transaction past the staff deadline.
WRITE_ERRORS = {400: ErrorOut, 409: ErrorOut, **ERRORS, 503: ErrorOut}
StateName = Literal["active", "warned", "restricted", "suspended", "frozen", "blocked", "terminated"]
MAX_ID = 2**63 - 1


class AccessOut(Schema):
    subscriber_id: int
    state: StateName
    since: dt.datetime | None
    owed: Decimal = Field(description="What must be paid to leave restricted / suspended")
    runout_on: dt.date | None = Field(description="The day the money runs out at today's fees")
    days_left: int | None
    restricted_since: dt.datetime | None
    exempt: bool
    exemption_id: int | None
    reason: str = Field(description="The operator's words for blocked / terminated")


class TransitionOut(Schema):
    id: int
    from_state: StateName
    to_state: StateName
    at: dt.datetime
    cause: str
    available: Decimal | None = Field(description="Balance + credit limit at the change")
    actor_id: int | None
    reason: str


class TransitionPage(Schema):
    items: list[TransitionOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null on the last one")


class PageParams(Schema):
    limit: int = Field(50, ge=1, le=500)
    cursor: str = Field("", max_length=40, description="From the previous page's next_cursor")


class AccessReasonIn(Schema):
    reason: str = Field(..., max_length=500)


class QueueParams(PageParams):
    state: Literal["warned", "restricted", "suspended", "blocked", "terminated"] | None = None
    branch_id: int | None = Field(None, ge=1, le=MAX_ID)


class QueueItem(Schema):
    subscriber_id: int
    account_number: str
    display_name: str
    branch_id: int
    state: StateName
    since: dt.datetime
    owed: Decimal
    restricted_since: dt.datetime | None
    days_restricted: int | None
    runout_on: dt.date | None
    exempt: bool
    reason: str


class QueuePage(Schema):
    items: list[QueueItem]
    next_cursor: str | None


class ExemptionOut(Schema):
    id: int
    subscriber_id: int | None
    group_id: int | None
    reason: str
    starts_on: dt.date
    expires_on: dt.date
    status: Literal["active", "scheduled", "expired", "revoked"]
    created_at: dt.datetime
    created_by_id: int | None
    revoked_at: dt.datetime | None
    revoked_by_id: int | None


class ExemptionPage(Schema):
    items: list[ExemptionOut]
    next_cursor: str | None


class ExemptionParams(PageParams):
    status: Literal["active", "scheduled", "expired", "revoked"] | None = None
    subscriber_id: int | None = Field(None, ge=1, le=MAX_ID)


class ExemptionIn(Schema):
    subscriber_id: int | None = Field(None, ge=1, le=MAX_ID, description="The subscriber, or give group_id")
    group_id: int | None = Field(None, ge=1, le=MAX_ID)
    reason: str = Field(..., max_length=500)
    starts_on: dt.date | None = Field(None, description="Empty: today")
    expires_on: dt.date


class RevokeIn(Schema):
    reason: str = Field("", max_length=500)


class RuleOut(Schema):
    id: int
    name: str
    is_default: bool
    group_id: int | None
    plan_id: int | None
    warn_days: int
    suspend_after_days: int | None = Field(description="null: never suspended automatically")


def _cursor(cursor: str) -> int | None:
    """Cursors here are the last row's id (subscriber id for the queue): opaque to clients all the same."""
    if not cursor:
        return None
    if not cursor.isdigit() or int(cursor) > MAX_ID:
        raise ValidationError(
            {"cursor": ValidationError(_("This cursor is not one a page of this list gave."), code="cursor_invalid")}
        )
    return int(cursor)


def _access(subscriber) -> dict:
    summary = selectors.access_summary(subscriber)
    return {
        "subscriber_id": subscriber.pk,
        "state": summary.state,
        "since": summary.since,
        "owed": summary.owed,
        "runout_on": summary.runout_on,
        "days_left": summary.days_left,
        "restricted_since": summary.restricted_since,
        "exempt": summary.exempt,
        "exemption_id": summary.exemption.pk if summary.exemption else None,
        "reason": summary.reason,
    }


def _exemption(exemption: Exemption) -> dict:
    return {
        **{name: getattr(exemption, name) for name in ExemptionOut.model_fields if name != "status"},
        "status": selectors.exemption_status(exemption),
    }


# --- one subscriber ------------------------------------------------------------------------------------------


@router.get("/subscribers/{int:subscriber_id}/access", response={200: AccessOut, **ERRORS}, summary="Access state")
def get_access(request, subscriber_id: int):
    check_perm(request.user, Perm.DUNNING_VIEW)
    return _access(get_subscriber(request.user, subscriber_id))


@router.get(
    "/subscribers/{int:subscriber_id}/access/transitions",
    response={200: TransitionPage, **ERRORS},
    summary="Changes of access state, newest first",
)
def list_transitions(request, subscriber_id: int, params: Query[PageParams]):
    check_perm(request.user, Perm.DUNNING_VIEW)
    subscriber = get_subscriber(request.user, subscriber_id)
    rows = selectors.transitions_of(subscriber.pk, limit=params.limit + 1, before_id=_cursor(params.cursor))
    items = rows[: params.limit]
    return {
        "items": [TransitionOut.from_orm(t) for t in items],
        "next_cursor": str(items[-1].pk) if len(rows) > params.limit else None,
    }


def _may(perm: Perm):
    def access(request, subscriber_id: int, **_kwargs) -> None:
        get_subscriber(request.user, subscriber_id)
        check_perm(request.user, perm)

    return access


@contextmanager
def _busy_is_503():
    """Nothing was written, and a retry (same ``Idempotency-Key``) may well succeed: 503, not a 500 or a 409."""
    try:
        yield
    except actions.AccessBusy as exc:
        raise ApiError(503, exc.code, str(exc)) from exc


def _change(request, subscriber_id: int, do, reason: str) -> dict:
    subscriber = get_subscriber(request.user, subscriber_id)
    with _busy_is_503():
        do(subscriber, acting_user=request.user, reason=reason)
    return _access(subscriber)


@router.post(
    "/subscribers/{int:subscriber_id}/access/block",
    response={200: AccessOut, **WRITE_ERRORS},
    summary="Block access (an operator's block, whatever the balance)",
)
@idempotent(200, access=_may(Perm.DUNNING_MANAGE))
def block_access(request, subscriber_id: int, payload: AccessReasonIn):
    return _change(request, subscriber_id, actions.do_block_access, payload.reason)


@router.post(
    "/subscribers/{int:subscriber_id}/access/unblock",
    response={200: AccessOut, **WRITE_ERRORS},
    summary="Lift an operator's block; the state is then what the money says",
)
@idempotent(200, access=_may(Perm.DUNNING_MANAGE))
def unblock_access(request, subscriber_id: int, payload: AccessReasonIn):
    return _change(request, subscriber_id, actions.do_unblock_access, payload.reason)


@router.post(
    "/subscribers/{int:subscriber_id}/access/terminate",
    response={200: AccessOut, **WRITE_ERRORS},
    summary="Terminate access (administrators)",
)
@idempotent(200, access=_may(Perm.DUNNING_TERMINATE))
def terminate_access(request, subscriber_id: int, payload: AccessReasonIn):
    return _change(request, subscriber_id, actions.do_terminate_access, payload.reason)


@router.post(
    "/subscribers/{int:subscriber_id}/access/reinstate",
    response={200: AccessOut, **WRITE_ERRORS},
    summary="Reinstate terminated access (administrators)",
)
@idempotent(200, access=_may(Perm.DUNNING_TERMINATE))
def reinstate_access(request, subscriber_id: int, payload: AccessReasonIn):
    return _change(request, subscriber_id, actions.do_reinstate_access, payload.reason)


# --- the queue, exemptions, rules ----------------------------------------------------------------------------


@router.get(
    "/access-states",
    response={200: QueuePage, **ERRORS},
    summary="The dunning queue: subscribers warned, restricted, suspended, blocked or terminated, by subscriber id",
)
def list_access_states(request, params: Query[QueueParams]):
    check_perm(request.user, Perm.DUNNING_VIEW)
    filters = selectors.QueueFilters(states=(params.state,) if params.state else (), branch_id=params.branch_id)
    qs = selectors.queue(request.user, filters).order_by("subscriber_id")
    after = _cursor(params.cursor)
    if after is not None:
        qs = qs.filter(subscriber_id__gt=after)
    rows = list(qs[: params.limit + 1])
    items: list[AccessState] = rows[: params.limit]
    return {
        "items": [
            {
                "subscriber_id": s.subscriber_id,
                "account_number": s.subscriber.account_number,
                "display_name": s.subscriber.display_name,
                "branch_id": s.subscriber.branch_id,
                "state": s.state,
                "since": s.since,
                "owed": s.owed,
                "restricted_since": s.restricted_since,
                "days_restricted": selectors.days_restricted(s),
                "runout_on": s.runout_on,
                "exempt": s.exempt,
                "reason": s.reason,
            }
            for s in items
        ],
        "next_cursor": str(items[-1].subscriber_id) if len(rows) > params.limit else None,
    }


@router.get("/exemptions", response={200: ExemptionPage, **ERRORS}, summary="Exemptions from blocking, newest first")
def list_exemptions(request, params: Query[ExemptionParams]):
    check_perm(request.user, Perm.DUNNING_VIEW)
    qs = selectors.list_exemptions(request.user, status=params.status or "", subscriber_id=params.subscriber_id)
    qs = qs.order_by("-id")
    before = _cursor(params.cursor)
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs[: params.limit + 1])
    items = rows[: params.limit]
    return {
        "items": [_exemption(e) for e in items],
        "next_cursor": str(items[-1].pk) if len(rows) > params.limit else None,
    }


def _may_exempt(request, payload: ExemptionIn, **_kwargs) -> None:
    check_perm(request.user, Perm.DUNNING_MANAGE)
    if payload.subscriber_id is not None:
        get_subscriber(request.user, payload.subscriber_id)
    if payload.group_id is not None:
        selectors.check_exemption_scope(request.user, group=payload.group_id)


@router.post("/exemptions", response={201: ExemptionOut, **WRITE_ERRORS}, summary="Exempt from blocking")
@idempotent(201, access=_may_exempt)
def create_exemption(request, payload: ExemptionIn):
    _may_exempt(request, payload)
    if (payload.subscriber_id is None) == (payload.group_id is None):
        message = _("Give subscriber_id or group_id, not both.")
        raise ValidationError({"subscriber_id": ValidationError(message, code="scope")})
    subscriber = get_subscriber(request.user, payload.subscriber_id) if payload.subscriber_id else None
    group = None
    if payload.group_id is not None:
        group = SubscriberGroup.objects.filter(pk=payload.group_id).first()
        if group is None:
            raise ValidationError({"group_id": ValidationError(_("No such group."), code="not_found")})
    with _busy_is_503():
        exemption = actions.do_create_exemption(
            acting_user=request.user,
            subscriber=subscriber,
            group=group,
            reason=payload.reason,
            starts_on=payload.starts_on,
            expires_on=payload.expires_on,
        )
    return _exemption(exemption)


def _visible_exemption(request, exemption_id: int, **_kwargs) -> Exemption:
    check_perm(request.user, Perm.DUNNING_MANAGE)
    exemption = get_object_or_404(selectors.visible_exemptions(request.user), pk=exemption_id)
    selectors.check_exemption_scope(request.user, group=exemption.group_id)
    return exemption


@router.post(
    "/exemptions/{int:exemption_id}/revoke", response={200: ExemptionOut, **WRITE_ERRORS}, summary="Revoke an exemption"
)
@idempotent(200, access=_visible_exemption)
def revoke_exemption(request, exemption_id: int, payload: RevokeIn):
    exemption = _visible_exemption(request, exemption_id)
    with _busy_is_503():
        return _exemption(actions.do_revoke_exemption(exemption, acting_user=request.user, reason=payload.reason))


@router.get("/dunning-rules", response={200: list[RuleOut], **ERRORS}, summary="Dunning rules: default, groups, plans")
def list_rules(request):
    check_perm(request.user, Perm.DUNNING_VIEW)
    return [RuleOut.from_orm(r) for r in selectors.list_rules()]
