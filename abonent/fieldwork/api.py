"""REST API of field work, mounted under ``/api/v1/``: an installer's app reads the day and the devices issued to
them and closes a job; the warehouse reads its counts. A job of another installer or branch is a 404. Closing
requires an ``Idempotency-Key``: a prospect's connection activates a plan, which charges, and a phone on a bad
network retries; the retry gets the first answer."""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from ninja import Field, Query, Router, Schema

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import idempotent
from abonent.core import clock
from abonent.staff.permissions import Perm, check_perm

from . import actions, selectors
from .actions.common import check_any
from .models import DeviceState, Job

router = Router(tags=["fieldwork"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
WRITE_ERRORS = {400: ErrorOut, 409: ErrorOut, **ERRORS, 503: ErrorOut}
MAX_ID = 2**63 - 1


class JobChecklistItemOut(Schema):
    id: int
    text: str
    done: bool


class JobOut(Schema):
    id: int
    kind: str = Field(description="connection or repair")
    status: str = Field(description="scheduled, done or cancelled")
    day: dt.date
    starts_at: dt.time
    ends_at: dt.time
    address: str
    contact_phone: str = Field(description="E.164; empty when unknown")
    subscriber_id: int | None = Field(description="Null for a prospect until the connection job is closed")
    contact_name: str
    ticket_number: int | None
    note: str
    result: str
    checklist: list[JobChecklistItemOut]


class StockDeviceOut(Schema):
    id: int
    serial_number: str
    mac_address: str | None
    model: str
    kind: str
    job_id: int | None = Field(description="The job it was issued for, if any")


class JobDayParams(Schema):
    day: dt.date | None = Field(None, description="Default: today")


class JobCloseIn(Schema):
    done_item_ids: list[int] = Field(default_factory=list, max_length=100)
    serials: list[str] = Field(default_factory=list, max_length=20, description="Devices issued to you, installed")
    removed_serials: list[str] = Field(
        default_factory=list, max_length=20, description="The stock's devices taken away from the subscriber"
    )
    result: str = Field("", max_length=4000)


class StockModelCountOut(Schema):
    model_id: int
    vendor: str
    name: str
    kind: str
    counts: dict[str, int] = Field(description="Devices by state: " + ", ".join(DeviceState.values))
    total: int


def _job_out(job: Job) -> dict:
    name = (
        job.subscriber.display_name
        if job.subscriber_id
        else " ".join(p for p in (job.last_name, job.first_name, job.middle_name) if p)
    )
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "day": job.day,
        "starts_at": job.starts_at,
        "ends_at": job.ends_at,
        "address": job.address,
        "contact_phone": job.contact_phone,
        "subscriber_id": job.subscriber_id,
        "contact_name": name,
        "ticket_number": job.ticket.number if job.ticket_id else None,
        "note": job.note,
        "result": job.result,
        "checklist": [{"id": i.pk, "text": i.text, "done": i.done} for i in job.checklist.all()],
    }


@router.get("/fieldwork/my-day", response={200: list[JobOut], **ERRORS}, summary="Your jobs of a day, in slot order")
def my_day(request, params: Query[JobDayParams]):
    check_perm(request.user, Perm.JOB_WORK)
    return [_job_out(job) for job in selectors.my_day(request.user, params.day or clock.today())]


@router.get("/fieldwork/my-devices", response={200: list[StockDeviceOut], **ERRORS}, summary="Devices issued to you")
def my_devices(request):
    check_perm(request.user, Perm.JOB_WORK)
    return [
        {
            "id": d.pk,
            "serial_number": d.serial_number,
            "mac_address": d.mac_address,
            "model": str(d.device_model),
            "kind": d.device_model.kind,
            "job_id": d.job_id,
        }
        for d in selectors.issued_to(request.user).order_by("serial_number")
    ]


def _may_close(request, job_id: int, **_kwargs) -> Job:
    check_any(request.user, Perm.JOB_WORK, Perm.JOB_MANAGE)
    if job_id > MAX_ID:
        raise Http404
    return selectors.get_job(request.user, job_id)


@router.post(
    "/fieldwork/jobs/{int:job_id}/close",
    response={200: JobOut, **WRITE_ERRORS},
    summary="Close a job as done: ticked items, the serials installed, a note",
)
@idempotent(200, access=_may_close, required=True)
def close_job(request, job_id: int, payload: JobCloseIn):
    job = actions.do_close_job(
        _may_close(request, job_id),
        done_item_ids=payload.done_item_ids,
        serials=payload.serials,
        removed_serials=payload.removed_serials,
        result=payload.result,
        acting_user=request.user,
    )
    return _job_out(Job.objects.select_related("subscriber", "ticket").get(pk=job.pk))


@router.get(
    "/fieldwork/stock/counts", response={200: list[StockModelCountOut], **ERRORS}, summary="Devices per model and state"
)
def stock_counts(request):
    check_perm(request.user, Perm.STOCK_MANAGE)
    return [
        {
            "model_id": row["model"].pk,
            "vendor": row["model"].vendor,
            "name": row["model"].name,
            "kind": row["model"].kind,
            "counts": dict(zip(DeviceState.values, row["counts"], strict=True)),
            "total": row["total"],
        }
        for row in selectors.stock_counts()
    ]
