"""The demo's network monitoring: something for the dashboard, the NAS cards and the pool and traffic pages to show
from the first minute. Demo only; runs after the network step (its NAS and logins) and on every start of the demo:

- two more NAS, ``bras-tver`` and ``bras-klin`` (their interim interval is an hour, so that the sessions seeded
  on them, which no NAS keeps reporting, stay open and unflagged for two hours of the demo);
- three address pools, the main one about 80 % used;
- sessions online on those NAS for most subscribers (not the featured one, whose login the banner's ``radclient``
  command uses), when none is open there (the previous run's were closed as stale);
- a week of five-minute samples up to now for every NAS, an evening peak each day, ending at the sessions open
  now, filling only the gap since the last sample;
- a week of daily traffic for the subscribers online, for the traffic page.

Then the sampler runs once, so that the health of the NAS and the pools' use are there before the worker's first
run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from abonent.core import clock
from abonent.core.seeding import SeedContext, seed_step

from ..models import IpPool, Login, Nas, PoolKind, Session, SessionStatus, UsageDay, Vendor
from .models import NasSample
from .sampler import SAMPLE_INTERVAL, take_samples

DEMO_NAS = [
    # name, address, most sessions it holds, address pool
    ("bras-tver", "10.10.0.1", 210, "pppoe-main"),
    ("bras-klin", "10.10.0.2", 30, "pppoe-klin"),
]
DEMO_POOLS = [
    ("pppoe-main", "100.64.0.0/24", PoolKind.REGULAR),
    ("pppoe-klin", "100.64.1.0/25", PoolKind.REGULAR),
    ("debtors", "10.255.0.0/24", PoolKind.DEBTORS),
]
DEMO_INTERIM_SECONDS = 3600
WEEK = dt.timedelta(days=7)
# Per session online, at the evening peak: bits per second down; up is a tenth of it.
PEAK_BITS_PER_SECOND = 4_000_000


def _hash(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _evening(moment: dt.datetime) -> float:
    """0 at 9 in the morning, 1 at 9 in the evening (local time), a smooth day in between."""
    local = timezone.localtime(moment)
    hour = local.hour + local.minute / 60
    return (1 + math.cos(2 * math.pi * (hour - 21) / 24)) / 2


@seed_step("network monitoring", order=70)
def seed_monitoring(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    now = clock.now()
    admin = _admin()
    pools = {name: _pool(admin, name, network, kind) for name, network, kind in DEMO_POOLS}
    demo_nas = [(_nas(admin, name, address), most, pools[pool]) for name, address, most, pool in DEMO_NAS]
    featured = (ctx.facts.get("radius") or {}).get("username", "")
    sessions = _open_sessions(demo_nas, featured, now)
    samples = _samples(now)
    days = _usage_days(now)
    run = take_samples(now)
    ctx.out.write(
        f"network monitoring: {sessions} sessions online, {samples} samples, {days} days of traffic, "
        f"{run.pools} pools sampled\n"
    )


def _admin():
    from abonent.staff.models import StaffUser

    return StaffUser.objects.filter(role="admin", is_active=True).order_by("pk").first()


def _pool(admin, name: str, network: str, kind: str) -> IpPool:
    from ..actions import do_create_ip_pool

    return IpPool.objects.filter(name=name).first() or do_create_ip_pool(
        acting_user=admin, name=name, network=network, kind=kind
    )


def _nas(admin, name: str, address: str) -> Nas:
    from ..actions import do_create_nas

    return Nas.objects.filter(name=name).first() or do_create_nas(
        acting_user=admin,
        name=name,
        ip_address=address,
        secret=f"demo-{name}-shared-secret",
        vendor=Vendor.MIKROTIK,
        interim_interval=DEMO_INTERIM_SECONDS,
    )


def _open_sessions(demo_nas, featured: str, now: dt.datetime) -> int:
    """Sessions online on the demo NAS for the first subscribers' logins, when none is open there."""
    if Session.objects.filter(status=SessionStatus.OPEN, nas__in=[n for n, _most, _pool in demo_nas]).exists():
        return 0
    logins = list(
        Login.objects.filter(is_active=True, subscriber__status="active")
        .exclude(username=featured)
        .order_by("subscriber_id")
        .values_list("pk", "subscriber_id", "username")[: sum(most for _n, most, _p in demo_nas)]
    )
    stamp = int(now.timestamp())
    rows, start = [], 0
    for nas, most, pool in demo_nas:
        network = pool.network.split("/")[0].rsplit(".", 1)[0]
        for offset, (login_id, subscriber_id, username) in enumerate(logins[start : start + most]):
            started = now - dt.timedelta(minutes=10 + _hash(login_id, "start") % (3 * 24 * 60))
            seconds = int((now - started).total_seconds())
            down = seconds * (PEAK_BITS_PER_SECOND // 8) * (20 + _hash(login_id, "down") % 60) // 100
            rows.append(
                Session(
                    nas=nas,
                    unique_id=f"demo-{stamp}-{login_id}",
                    acct_session_id=f"{stamp:x}{login_id:06x}",
                    login_id=login_id,
                    subscriber_id=subscriber_id,
                    username=username,
                    framed_ip=f"{network}.{offset + 1}",
                    calling_station_id="02:00:" + ":".join(f"{b:02x}" for b in _hash(login_id).to_bytes(8, "big")[:4]),
                    nas_port_id=f"ether{1 + offset % 8}",
                    status=SessionStatus.OPEN,
                    started_at=started,
                    updated_at=now,
                    session_time=seconds,
                    input_octets=down // 10,
                    output_octets=down,
                )
            )
        start += most
    Session.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _samples(now: dt.datetime) -> int:
    """Five-minute samples of every NAS over the last week, from its newest sample (or a week ago) to now."""
    step = int(SAMPLE_INTERVAL.total_seconds())
    created = 0
    open_sessions = Session.objects.filter(status=SessionStatus.OPEN).values("nas_id").annotate(n=Count("id"))
    online_now = dict(open_sessions.values_list("nas_id", "n"))
    for nas in Nas.objects.order_by("pk"):
        # The curve meets the sessions open now at its end: the sampler's first real sample continues it.
        scale = online_now.get(nas.pk, 0) / (0.55 + 0.4 * _evening(now))
        newest = NasSample.objects.filter(nas=nas).order_by("-taken_at").values_list("taken_at", flat=True).first()
        begin = max(newest + SAMPLE_INTERVAL if newest else now - WEEK, now - WEEK)
        epoch = int(begin.timestamp())
        moment = dt.datetime.fromtimestamp(epoch + (-epoch) % step, tz=dt.UTC)
        rows = []
        while moment < now:
            evening = _evening(moment)
            noise = (_hash(nas.pk, int(moment.timestamp())) % 11 - 5) / 100
            online = max(0, round(scale * (0.55 + 0.4 * evening + noise)))
            down = int(online * PEAK_BITS_PER_SECOND * (0.25 + 0.75 * evening) / 8 * step)
            rows.append(
                NasSample(
                    nas=nas,
                    taken_at=moment,
                    interval_seconds=step,
                    open_sessions=online,
                    input_octets=down // 10,
                    output_octets=down,
                    accepts=_hash(nas.pk, moment, "a") % (1 + online // 20),
                    rejects=int(_hash(nas.pk, moment, "r") % 40 == 0),
                    coa_failures=int(_hash(nas.pk, moment, "c") % 150 == 0),
                )
            )
            moment += SAMPLE_INTERVAL
        with transaction.atomic():
            NasSample.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        created += len(rows)
    return created


def _usage_days(now: dt.datetime) -> int:
    """A week of daily traffic for the subscribers with a session on the demo NAS (days they have none of)."""
    today = timezone.localtime(now).date()
    subscriber_ids = list(
        Session.objects.filter(status=SessionStatus.OPEN, nas__name__in=[name for name, *_rest in DEMO_NAS])
        .values_list("subscriber_id", flat=True)
        .distinct()
    )
    rows = []
    for subscriber_id in subscriber_ids:
        for back in range(7):
            day = today - dt.timedelta(days=back)
            gigabytes = 1 + _hash(subscriber_id, day) % 12
            down = gigabytes * 1024**3 + _hash(subscriber_id, day, "b") % 1024**3
            rows.append(UsageDay(subscriber_id=subscriber_id, day=day, input_octets=down // 12, output_octets=down))
    UsageDay.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return len(rows)
