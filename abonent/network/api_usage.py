"""``POST /api/v1/usage-records``: traffic from external collectors (NetFlow, IPTV) for staff and service tokens
with ``network.manage``; the rules are ``usage_records``'. Apart from ``api`` (FreeRADIUS's endpoints), whose
router only RADIUS service tokens may call."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Router, Schema

from abonent.api.errors import ErrorOut

from .usage_records import MAX_BATCH, UsageRecordData, do_add_usage_records

router = Router(tags=["network"])


class SessionRef(Schema):
    id: int | None = Field(None, description="The session's id in Abonent")
    nas_id: int | None = Field(None, description="With acct_session_id: the NAS the session is on")
    acct_session_id: str | None = Field(None, max_length=253)


class UsageRecordIn(Schema):
    source: str = Field(description="The collector, e.g. netflow-1; with record_id, the record's unique key")
    record_id: str
    session: SessionRef
    day: dt.date = Field(description="The operator's local day the traffic belongs to; not in the future")
    input_octets: int = Field(description="Bytes from the subscriber (upload), 0 to 2^63 − 1")
    output_octets: int = Field(description="Bytes to the subscriber (download), 0 to 2^63 − 1")


class UsageRecordsIn(Schema):
    records: list[UsageRecordIn] = Field(description=f"At most {MAX_BATCH} records")


class UsageRecordsOut(Schema):
    received: int
    added: int = Field(description="Records new to Abonent, added to the subscribers' daily traffic")
    duplicates: int = Field(description="Records already received (the same source and record_id): nothing added")


@router.post(
    "/usage-records",
    response={200: UsageRecordsOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
    summary="Add traffic records of external collectors to the subscribers' daily traffic (idempotent by record)",
)
def add_usage_records(request, payload: UsageRecordsIn):
    return do_add_usage_records(
        [
            UsageRecordData(
                source=r.source,
                record_id=r.record_id,
                day=r.day,
                input_octets=r.input_octets,
                output_octets=r.output_octets,
                session_id=r.session.id,
                nas_id=r.session.nas_id,
                acct_session_id=r.session.acct_session_id,
            )
            for r in payload.records
        ],
        acting_user=request.user,
    )
