"""Requests (заявки) in the portal's API: the token's subscriber's tickets, one with its public thread (internal
notes never), a new one, a reply, closing and reopening. Another subscriber's ticket id is a 404 and nothing is
written. Opening a request and replying accept an optional ``Idempotency-Key`` (a retry gets the first answer);
the same request or reply again within two minutes is answered with the first one anyway."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.core.exceptions import ValidationError
from ninja import Field, Schema

from abonent.api.errors import ApiError, ErrorOut
from abonent.api.idempotency import idempotent
from abonent.helpdesk import actions, rules
from abonent.helpdesk.models import Ticket, TicketCategory, TicketComment, TicketSource, TicketStatus

from .. import requests_data
from . import router

ERRORS = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}
# A refusal that is not about a field: the limits (429) and a state that does not allow it (409).
_STATUS_OF = {
    "too_many_tickets": 429,
    "too_many_comments": 429,
    "too_many_reopens": 429,
    "ticket_closed": 409,
    "reopen_expired": 409,
    "status_not_allowed": 409,
}


class MyRequestOut(Schema):
    id: int
    number: int = Field(description="The request's number, as staff and messages name it")
    category: str = Field(description=", ".join(TicketCategory.values))
    category_label: str
    subject: str
    address: str = Field(description="The address to connect (connection requests); empty otherwise")
    status: str = Field(description=", ".join(TicketStatus.values))
    status_label: str = Field(description="The status as the subscriber reads it, in the request's language")
    created_at: dt.datetime
    updated_at: dt.datetime = Field(description="The last message or status change the subscriber can see")
    closed_at: dt.datetime | None = Field(description="When it was resolved or closed")
    can_reopen: bool = Field(description="A finished request the subscriber may still reopen (or reply to)")
    reopen_until: dt.datetime | None


class MyCommentOut(Schema):
    id: int
    author: Literal["subscriber", "staff"] = Field(description="subscriber: you; staff: the provider's support")
    text: str
    created_at: dt.datetime


class MyRequestDetailOut(MyRequestOut):
    comments: list[MyCommentOut] = Field(description="The public messages, oldest first (the first is the request)")


class MyRequestListOut(Schema):
    items: list[MyRequestOut] = Field(description=f"The latest {requests_data.LIST_LIMIT}, most recently updated first")


class MyRequestIn(Schema):
    category: Literal[tuple(TicketCategory.values)]  # type: ignore[valid-type]
    subject: str = Field(max_length=rules.SUBJECT_MAX_LENGTH, description="A few words")
    text: str = Field(max_length=rules.TEXT_MAX_LENGTH, description="What happened")
    address: str = Field(
        "", max_length=rules.ADDRESS_MAX_LENGTH, description="Required for connection_request: where to connect"
    )


class MyCommentIn(Schema):
    text: str = Field(max_length=rules.TEXT_MAX_LENGTH)


def _request(ticket: Ticket) -> dict:
    view = requests_data.view_of(ticket)
    return {
        "id": ticket.pk,
        "number": ticket.number,
        "category": ticket.category,
        "category_label": ticket.get_category_display(),
        "subject": ticket.subject,
        "address": ticket.address,
        "status": ticket.status,
        "status_label": view.status_label,
        "created_at": ticket.created_at,
        "updated_at": ticket.public_updated_at,
        "closed_at": ticket.closed_at,
        "can_reopen": view.can_reopen,
        "reopen_until": view.reopen_until,
    }


def _comment(comment: TicketComment) -> dict:
    return {"id": comment.pk, "author": comment.author_kind, "text": comment.text, "created_at": comment.created_at}


def _detail(ticket: Ticket) -> dict:
    return {**_request(ticket), "comments": [_comment(c) for c in requests_data.public_thread(ticket)]}


def _refused(exc: ValidationError):
    """A domain refusal as its API answer: a limit is 429, a state 409, bad fields 422 (the default handler)."""
    codes = [] if hasattr(exc, "error_dict") else [e.code for e in exc.error_list]
    for code in codes:
        if code in _STATUS_OF:
            return ApiError(_STATUS_OF[code], code, " ".join(exc.messages))
    return exc


def _own(request, request_id: int, **_ignored) -> Ticket:
    return requests_data.own_request(request, request_id)


def _anyone(request, **_ignored) -> None:
    """Opening a request takes no id: nothing to check before a stored answer is replayed to its own subscriber."""


@router.get("/requests", response={200: MyRequestListOut, 401: ErrorOut}, summary="My requests")
def list_requests(request):
    return {"items": [_request(view.ticket) for view in requests_data.requests_of(request.subscriber)]}


@router.post("/requests", response={201: MyRequestDetailOut, **ERRORS}, summary="Open a request")
@idempotent(201, access=_anyone)
def open_request(request, payload: MyRequestIn):
    try:
        ticket = actions.do_open_ticket(
            request.subscriber,
            actions.TicketData(**payload.dict()),
            source=TicketSource.API,
            acting_user=None,
        )
    except ValidationError as exc:
        raise _refused(exc) from exc
    return _detail(ticket)


@router.get(
    "/requests/{request_id}", response={200: MyRequestDetailOut, **ERRORS}, summary="A request and its messages"
)
def get_request(request, request_id: int):
    return _detail(_own(request, request_id))


@router.post("/requests/{request_id}/comments", response={201: MyCommentOut, **ERRORS}, summary="Reply to a request")
@idempotent(201, access=_own)
def comment_request(request, request_id: int, payload: MyCommentIn):
    ticket = _own(request, request_id)
    try:
        comment = actions.do_comment_ticket(ticket, text=payload.text, acting_user=None)
    except ValidationError as exc:
        raise _refused(exc) from exc
    return _comment(comment)


def _set_status(request, request_id: int, status: str) -> dict:
    ticket = _own(request, request_id)
    try:
        ticket = actions.do_change_ticket_status(ticket, status=status, acting_user=None)
    except ValidationError as exc:
        raise _refused(exc) from exc
    return _request(ticket)


@router.post("/requests/{request_id}/close", response={200: MyRequestOut, **ERRORS}, summary="Close a request")
def close_request(request, request_id: int):
    return _set_status(request, request_id, TicketStatus.CLOSED)


@router.post(
    "/requests/{request_id}/reopen",
    response={200: MyRequestOut, **ERRORS},
    summary="Reopen a resolved or closed request (within the reopen window)",
)
def reopen_request(request, request_id: int):
    return _set_status(request, request_id, actions.REOPENED_STATUS)
