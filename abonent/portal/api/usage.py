"""The subscriber's traffic and sessions: ``GET /api/v1/my/usage?month=YYYY-MM`` (per day),
``GET /api/v1/my/usage/months`` (per month, the last 12) and ``GET /api/v1/my/sessions?before=<id>`` (newest
first, by keyset). A month that is not one is a 422 with the field code; another subscriber's session as
``before`` is a 404, like one that does not exist."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from ninja import Field, Query, Schema

from abonent.api.errors import ErrorOut
from abonent.core import clock
from abonent.network.models import Session

from .. import usage_data
from ..access import own
from . import router

MAX_ID = 2**63 - 1


class MyUsageDayOut(Schema):
    day: dt.date
    download_bytes: int = Field(description="Sent to the subscriber")
    upload_bytes: int = Field(description="Received from the subscriber")
    online_seconds: int = Field(description="Time online that day (sessions at once counted once)")


class MyUsageMonthOut(Schema):
    month: str = Field(description="YYYY-MM", examples=["2026-11"])
    days: list[MyUsageDayOut] = Field(description="Every day of the month, up to today for the current month")
    download_bytes: int
    upload_bytes: int
    online_seconds: int


class MyUsageParams(Schema):
    month: str = Field("", max_length=20, description="YYYY-MM; empty: the current month")


class MyMonthTotalOut(Schema):
    month: str = Field(description="YYYY-MM")
    download_bytes: int
    upload_bytes: int


class MyUsageMonthsOut(Schema):
    months: list[MyMonthTotalOut] = Field(description="The last 12 months, this one included, oldest first")


class MySessionOut(Schema):
    id: int
    started_at: dt.datetime
    stopped_at: dt.datetime | None
    online: bool
    duration_seconds: int
    ip_address: str | None
    mac: str = Field(description="The NAS's Calling-Station-Id: the router's MAC, usually")
    download_bytes: int
    upload_bytes: int
    end_reason: str = Field(description="Acct-Terminate-Cause as the NAS sent it (RFC 2866 §5.10); empty if online")
    end_reason_label: str


class MySessionParams(Schema):
    before: int | None = Field(None, ge=1, le=MAX_ID, description="The last session of the previous page")
    limit: int = Field(usage_data.SESSIONS_PER_PAGE, ge=1, le=usage_data.MAX_SESSIONS_PER_PAGE)


class MySessionsOut(Schema):
    items: list[MySessionOut]
    next_before: int | None = Field(description="Pass as ``before`` for the next page; null on the last one")


@router.get(
    "/usage",
    response={200: MyUsageMonthOut, 401: ErrorOut, 422: ErrorOut},
    summary="Traffic and time online per day of a month",
)
def usage(request, params: Query[MyUsageParams]):
    month = usage_data.parse_month(params.month, timezone.localdate(clock.now()))
    found = usage_data.month_usage(request.subscriber.pk, month)
    return {
        "month": month.strftime("%Y-%m"),
        "days": [vars(d) for d in found.days],
        "download_bytes": found.download_bytes,
        "upload_bytes": found.upload_bytes,
        "online_seconds": found.online_seconds,
    }


@router.get("/usage/months", response={200: MyUsageMonthsOut, 401: ErrorOut}, summary="Traffic per month, the last 12")
def usage_months(request):
    months = usage_data.months_usage(request.subscriber.pk)
    return {
        "months": [
            {"month": m.month.strftime("%Y-%m"), "download_bytes": m.download_bytes, "upload_bytes": m.upload_bytes}
            for m in months
        ]
    }


@router.get(
    "/usage/sessions",
    response={200: MySessionsOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Sessions, newest first, a page at a time",
)
def sessions(request, params: Query[MySessionParams]):
    before = own(Session.objects, request, pk=params.before) if params.before is not None else None
    page = usage_data.sessions_page(request.subscriber.pk, before=before, limit=params.limit)
    items = [{**vars(s), "ip_address": s.ip_address or None} for s in page.items]
    return {"items": items, "next_before": page.next_before}
