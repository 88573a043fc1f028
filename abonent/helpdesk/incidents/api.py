"""REST API of incidents: the list and one incident (``ticket.view``), and its compensation, which moves money and so
requires an ``Idempotency-Key`` (and ``incident.compensate`` without a branch limit). A second compensation with
another key returns the first (``created: false``) and credits nothing."""

from __future__ import annotations

import datetime as dt

from django.db import OperationalError
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from abonent.api.errors import ApiError, ErrorOut
from abonent.api.idempotency import idempotent
from abonent.catalog.api import Money
from abonent.core.deadlines import is_deadline
from abonent.staff.permissions import Perm, check_perm

from . import selectors
from .compensation import check_can_compensate, do_compensate_incident
from .models import Compensation, Incident

router = Router(tags=["incidents"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
WRITE_ERRORS = {400: ErrorOut, 409: ErrorOut, 503: ErrorOut, **ERRORS}


class CompensationOut(Schema):
    incident_id: int
    days: int
    total: Money
    subscriptions: int
    created_at: dt.datetime
    created: bool = Field(description="False when the incident had been compensated before: nothing was credited now")


class IncidentOut(Schema):
    id: int
    title: str
    description: str
    kind: str
    status: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    affected_count: int
    compensation: CompensationOut | None


class CompensationIn(Schema):
    # Strict: a JSON integer only. Lax, pydantic reads "1_0" as 10 and ``true`` as 1: days nobody meant.
    days: int = Field(description="Days of fees to credit, 1 to 31", strict=True)


def _compensation_out(compensation: Compensation, *, created: bool) -> dict:
    return {
        "incident_id": compensation.incident_id,
        "days": compensation.days,
        "total": compensation.total,
        "subscriptions": compensation.lines.count(),
        "created_at": compensation.created_at,
        "created": created,
    }


def _incident_out(incident: Incident) -> dict:
    compensation = Compensation.objects.filter(incident=incident).first()
    return {
        "id": incident.pk,
        "title": incident.title,
        "description": incident.description,
        "kind": incident.kind,
        "status": incident.status,
        "starts_at": incident.starts_at,
        "ends_at": incident.ends_at,
        "affected_count": incident.affected_count,
        "compensation": _compensation_out(compensation, created=False) if compensation else None,
    }


@router.get("/incidents", response={200: list[IncidentOut], **ERRORS}, summary="Incidents, the latest first")
def list_incidents(request, status: str = "open", limit: int = 50):
    check_perm(request.user, Perm.TICKET_VIEW)
    limit = max(1, min(limit, 200))
    return [_incident_out(i) for i in selectors.incidents(status).order_by("-starts_at", "-id")[:limit]]


@router.get("/incidents/{incident_id}", response={200: IncidentOut, **ERRORS}, summary="One incident")
def get_incident(request, incident_id: int):
    check_perm(request.user, Perm.TICKET_VIEW)
    return _incident_out(selectors.get_incident(incident_id))


def _compensator(request, incident_id: int, **_kwargs) -> Incident:
    check_can_compensate(request.user)
    return selectors.get_incident(incident_id)


@router.post(
    "/incidents/{incident_id}/compensation",
    response={201: CompensationOut, **WRITE_ERRORS},
    summary="Credit the affected subscribers N days of their fees, once per incident",
)
@idempotent(201, required=True, access=_compensator)
def compensate_incident(request, incident_id: int, payload: CompensationIn):
    incident = _compensator(request, incident_id)
    try:
        compensation, created = do_compensate_incident(incident, days=payload.days, acting_user=request.user)
    except OperationalError as exc:
        # Another compensation of it (a long one: a city) holds the incident's row past the lock deadline: nothing
        # was written, and a retry with the same key may well succeed.
        if not is_deadline(exc):
            raise
        message = _("This incident is being changed or compensated right now; nothing was done. Try again in a minute.")
        raise ApiError(503, "busy", message) from exc
    return _compensation_out(compensation, created=created)
