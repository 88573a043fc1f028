"""Sessions and traffic for the portal's home and usage tests, written the way the RADIUS server writes them:
accounting records through network's ``write_batch`` (sessions upserted, deltas added to ``UsageDay``)."""

from __future__ import annotations

import datetime as dt
import itertools

from abonent.network import actions as network
from abonent.network.accounting import INTERIM, START, STOP, AcctRecord, write_batch

_unique = itertools.count(1)


def make_nas(admin, name="nas-1", ip="192.0.2.1"):
    return network.do_create_nas(
        acting_user=admin, name=name, ip_address=ip, secret="portal-tests-radius-secret", vendor="mikrotik"
    )


def connect(
    nas,
    subscriber,
    *,
    start: dt.datetime,
    seconds: int = 0,
    download: int = 0,
    upload: int = 0,
    stop: bool = False,
    ip: str = "10.0.0.5",
    mac: str = "AA:BB:CC:00:11:22",
    cause: str = "User-Request",
) -> str:
    """A session from ``start``: its Start and, after ``seconds``, an Interim (or a Stop) with the totals. Returns
    its unique id (for ``report``)."""
    unique = f"u{next(_unique)}"
    records = [_record(nas, subscriber, START, unique, start, 0, 0, 0, ip, mac, "")]
    if seconds or download or upload or stop:
        status = STOP if stop else INTERIM
        records.append(
            _record(nas, subscriber, status, unique, start, seconds, upload, download, ip, mac, cause if stop else "")
        )
    write_batch(records)
    return unique


def report(nas, subscriber, unique, *, start, seconds, download, upload, stop=False, ip="10.0.0.5", cause=""):
    """A later record of the session ``unique``: cumulative totals, as a NAS sends them."""
    status = STOP if stop else INTERIM
    write_batch([_record(nas, subscriber, status, unique, start, seconds, upload, download, ip, "", cause)])


def _record(nas, subscriber, status, unique, start, seconds, upload, download, ip, mac, cause) -> AcctRecord:
    return AcctRecord(
        status=status,
        nas_id=nas.pk,
        event_time=start + dt.timedelta(seconds=seconds),
        unique_id=unique,
        acct_session_id="s-" + unique,
        username=f"login{subscriber.pk}",
        subscriber_id=subscriber.pk,
        framed_ip=ip,
        calling_station_id=mac,
        session_time=seconds,
        input_octets=upload,
        output_octets=download,
        terminate_cause=cause,
    )
