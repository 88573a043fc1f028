"""Reads of the network app: what the RADIUS server needs to authorise, sessions for the console, monitoring."""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BigIntegerField, Count, ExpressionWrapper, Func, Q, QuerySet, Sum

from abonent.billing.models import Subscription, SubscriptionStatus, TurboActivation, TurboStatus
from abonent.billing.rating.time_budget import TimeBudget, time_budgets
from abonent.catalog.models import Plan, ServiceKind, TrafficPolicy
from abonent.core import clock
from abonent.staff.permissions import scope_to_branches
from abonent.subscribers.models import SubscriberStatus

from .models import AuthAttempt, CoaRequest, CoaStatus, Login, Nas, Session, SessionStatus, UsageDay
from .usage import counted_bytes
from .vendors import Speed


class OctetSum(Sum):
    """SUM of byte counters that cannot overflow: PostgreSQL's sum(bigint) is numeric; SQLite's sum() of
    integers raises "integer overflow" past 2^63 (days saturated at the bigint's limit, issue 12), so there it
    is total(), a float: exact to 2^53 bytes (9 PB), plenty to compare with a plan's included volume."""

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="TOTAL", **extra_context)


@dataclass(frozen=True, slots=True)
class PlanSpeeds:
    day: Speed
    night: Speed | None
    night_from: dt.time | None
    night_until: dt.time | None
    fup: Speed | None
    included_bytes: int | None


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Everything the RADIUS server needs to answer for one login, without touching the database."""

    login_id: int
    subscriber_id: int
    kind: str
    username: str
    password_encrypted: str
    is_active: bool
    subscriber_closed: bool
    subscription_status: str | None  # active / frozen / None (no current subscription)
    plan_id: int | None
    static_ip: str | None
    pool: str | None
    simultaneous_use: int
    # A turbo bought for the subscription: its speed until then (``PolicyStore.decide`` checks the time).
    turbo: Speed | None = None
    turbo_until: dt.datetime | None = None
    # A subscription on a time plan: what its Session-Timeout is computed from (billing.rating.time_budget).
    time_budget: TimeBudget | None = None


def plan_speeds() -> dict[int, PlanSpeeds]:
    result = {}
    for plan in Plan.objects.all():
        night = None
        if plan.night_download_kbps and plan.night_upload_kbps and plan.night_starts_at and plan.night_ends_at:
            night = Speed(plan.night_download_kbps, plan.night_upload_kbps)
        fup = None
        if plan.fup_download_kbps and plan.fup_upload_kbps:
            fup = Speed(plan.fup_download_kbps, plan.fup_upload_kbps)
        result[plan.pk] = PlanSpeeds(
            day=Speed(
                plan.download_kbps,
                plan.upload_kbps,
                plan.burst_download_kbps,
                plan.burst_upload_kbps,
                plan.burst_seconds,
            ),
            night=night,
            night_from=plan.night_starts_at,
            night_until=plan.night_ends_at,
            fup=fup,
            included_bytes=plan.included_bytes,
        )
    return result


def _speed_subscriptions() -> QuerySet[Subscription]:
    """The subscriptions that can set a login's speed: internet ones that are active or frozen."""
    return Subscription.objects.exclude(status=SubscriptionStatus.TERMINATED).filter(
        plan__service__kind=ServiceKind.INTERNET
    )


def _current_subscriptions(
    subs: QuerySet[Subscription],
) -> tuple[dict[int, tuple[int, str, int]], dict[int, tuple[int, str, int]]]:
    """``(by id, by subscriber)`` of ``subs`` as ``(id, status, plan id)``. The subscription that sets a login's
    speed is the login's own (``by id``), else the subscriber's current one (``by subscriber``): an active one
    wins over a frozen one, and among equals the newest. ``login_policies`` and ``subscribers_over_quota`` both
    follow this rule, so the quota is counted against the plan whose speed the login gets."""
    by_id: dict[int, tuple[int, str, int]] = {}
    by_subscriber: dict[int, tuple[int, str, int]] = {}
    for sub_id, subscriber_id, status, plan_id in subs.order_by("started_on", "id").values_list(
        "id", "subscriber_id", "status", "plan_id"
    ):
        by_id[sub_id] = (sub_id, status, plan_id)
        current = by_subscriber.get(subscriber_id)
        if current is None or current[1] != SubscriptionStatus.ACTIVE or status == SubscriptionStatus.ACTIVE:
            by_subscriber[subscriber_id] = (sub_id, status, plan_id)
    return by_id, by_subscriber


def login_policies(subscriber_ids: Iterable[int] | None = None) -> list[LoginPolicy]:
    """Policies of every login, or of the logins of ``subscriber_ids``: three queries whatever the count."""
    logins = Login.objects.all()
    if subscriber_ids is not None:
        subscriber_ids = list(subscriber_ids)
        logins = logins.filter(subscriber_id__in=subscriber_ids)
    rows = list(
        logins.values_list(
            "id",
            "subscriber_id",
            "kind",
            "username",
            "password_encrypted",
            "is_active",
            "subscriber__status",
            "subscription_id",
            "static_ip",
            "pool__name",
            "simultaneous_use",
        )
    )
    subs = _speed_subscriptions()
    if subscriber_ids is not None:
        subs = subs.filter(subscriber_id__in=subscriber_ids)
    by_id, by_subscriber = _current_subscriptions(subs)
    # Turbos in effect: a few rows (partial index on the active ones), read for everyone at once.
    turbos = TurboActivation.objects.filter(status=TurboStatus.ACTIVE, ends_at__gt=clock.now())
    if subscriber_ids is not None:
        turbos = turbos.filter(subscription__subscriber_id__in=subscriber_ids)
    turbo_of = {
        sub_id: (Speed(down, up), until)
        for sub_id, down, up, until in turbos.values_list("subscription_id", "download_kbps", "upload_kbps", "ends_at")
    }
    budgets = time_budgets(subscriber_ids)
    result = []
    for (
        login_id,
        subscriber_id,
        kind,
        username,
        password,
        active,
        sub_status,
        subscription_id,
        static_ip,
        pool,
        simultaneous,
    ) in rows:
        current = by_id.get(subscription_id) if subscription_id else by_subscriber.get(subscriber_id)
        turbo, turbo_until = turbo_of.get(current[0], (None, None)) if current else (None, None)
        result.append(
            LoginPolicy(
                login_id=login_id,
                subscriber_id=subscriber_id,
                kind=kind,
                username=username,
                password_encrypted=password,
                is_active=active,
                subscriber_closed=sub_status == SubscriberStatus.CLOSED,
                subscription_status=current[1] if current else None,
                plan_id=current[2] if current else None,
                static_ip=static_ip,
                pool=pool,
                simultaneous_use=simultaneous,
                turbo=turbo,
                turbo_until=turbo_until,
                time_budget=budgets.get(current[0]) if current else None,
            )
        )
    return result


# Seconds added to a session's interim intervals before it stops counting: an interim sent on time still takes
# the NAS's Acct-Delay, the network and our write to reach ``updated_at``.
SESSION_ALIVE_GRACE = 30
# The longest a session counts, silent, whatever its NAS's interval: a NAS set to send interims once a day would
# otherwise keep the sessions of its crash counting for three days. Past it, a NAS with a long interval sees its
# live sessions stop counting between interims (docs/radius.md, "What the server answers").
SESSION_ALIVE_MAX_SECONDS = 2 * 3600


def session_alive_seconds(interim_interval: int, alive_intervals: int) -> int:
    """Seconds since its last update an open session on a NAS with this interim interval is taken as alive:
    for simultaneous use (``session_limits``) and by the stale-session sweeper, which closes it after."""
    return min(interim_interval * alive_intervals + SESSION_ALIVE_GRACE, SESSION_ALIVE_MAX_SECONDS)


def alive_seconds_by_nas(alive_intervals: int) -> dict[int, list[int]]:
    """``session_alive_seconds`` of every NAS: seconds → the NAS ids with it."""
    by_seconds: dict[int, list[int]] = {}
    for nas_id, interval in Nas.objects.values_list("id", "interim_interval"):
        by_seconds.setdefault(session_alive_seconds(interval, alive_intervals), []).append(nas_id)
    return by_seconds


@dataclass(slots=True)
class SessionCounts:
    """The open sessions that count toward simultaneous use, as ``session_limits`` reads them.

    ``on_nas`` (NAS id → login ids, one entry per session; 8 bytes each) says which logins an Accounting-On
    from that NAS frees, and ``started`` (NAS id → when each of those sessions started, ``unix_microseconds``,
    in the same order) which of them: those that started before it; ``spread`` holds the few logins counted on several
    NAS, with their count per NAS."""

    at_limit: set[int]
    below: dict[int, int]
    on_nas: dict[int, array]
    spread: dict[int, dict[int, int]]
    started: dict[int, array]


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def unix_microseconds(moment: dt.datetime) -> int:
    """``moment`` (aware) as whole microseconds since the Unix epoch: exactly what ``UnixMicroseconds`` reads,
    so a time from a record and one from the database compare as the database compares them."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


class UnixMicroseconds(Func):
    """A timestamp column as whole microseconds since the Unix epoch (a bigint). PostgreSQL hands 100,000 of
    them to Python in a tenth of the time it takes for as many datetimes (psycopg's timestamptz loader: about
    4.5 µs a value, measured)."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint")

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC. The format goes as a parameter: a literal %s in the
        # SQL would be taken for a placeholder.
        column, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"(CAST(strftime(%s, {column}) AS INTEGER) * 1000000"
            f" + CAST(substr({column} || '.000000', 21, 6) AS INTEGER))"
        )
        return sql, ["%s", *params, *params]


def session_alive_cutoffs(alive_intervals: int) -> Q:
    """Open sessions still alive: updated within ``session_alive_seconds`` (``alive_intervals`` interim
    intervals of their NAS, the Acct-Interim-Interval we send it, plus ``SESSION_ALIVE_GRACE``, at most
    ``SESSION_ALIVE_MAX_SECONDS``). One condition per distinct window."""
    now = clock.now()
    alive = Q(pk__in=[])
    for seconds, nas_ids in sorted(alive_seconds_by_nas(alive_intervals).items()):
        alive |= Q(nas_id__in=nas_ids, updated_at__gte=now - dt.timedelta(seconds=seconds))
    return alive


def session_limits(
    alive_intervals: int, subscriber_ids=None, *, restarted: dict[int, dt.datetime] | None = None
) -> SessionCounts:
    """The logins with as many live open sessions as they may have, those allowed more than one with some open
    but fewer (with how many), and where each counted session is and when it started (of ``subscriber_ids``
    when given). One scan of the open sessions.

    A session no longer counts once silent for ``alive_intervals`` interim intervals of its NAS
    (``session_alive_cutoffs``): a NAS that rebooted without Accounting-On, or a lost Stop, must not lock a
    subscriber out until the sweeper runs. ``restarted`` (NAS id → Accounting-On time) leaves out the sessions
    that event ends, whether or not its write has committed yet. With the Starts and Stops seen since, the
    RADIUS server knows at once when a login reaches its limit."""
    sessions = Session.objects.filter(status=SessionStatus.OPEN, login__isnull=False).filter(
        session_alive_cutoffs(alive_intervals)
    )
    for nas_id, at in (restarted or {}).items():
        sessions = sessions.exclude(nas_id=nas_id, started_at__lte=at)
    if subscriber_ids is not None:
        sessions = sessions.filter(login__subscriber_id__in=list(subscriber_ids))
    # One row a session, not one a login and NAS: an Accounting-On frees only the sessions that started before
    # it (a repeated one must not free the reconnect storm), so each session's start is kept.
    rows = (
        sessions.annotate(started_us=UnixMicroseconds("started_at"))
        .values_list("login_id", "nas_id", "login__simultaneous_use", "started_us")
        .order_by("login_id")  # a login's sessions come together: counted as they stream, no dict per login
    )
    at_limit: set[int] = set()
    below: dict[int, int] = {}
    on_nas: dict[int, array] = {}
    started: dict[int, array] = {}
    spread: dict[int, dict[int, int]] = {}

    def close(login_id: int, total: int, limit: int) -> None:
        if total >= limit:
            at_limit.add(login_id)
        elif limit > 1:
            below[login_id] = total

    # This runs on the RADIUS maintenance thread, holding the interpreter from the event loop: keep it lean.
    current, total, limit, first_nas = None, 0, 0, 0
    ids = starts = array("q")
    last_nas = None
    for login_id, nas_id, its_limit, started_us in raw_rows(rows):
        if nas_id != last_nas:  # most rows are on the NAS of the row before: no lookup then
            ids = on_nas.get(nas_id)
            if ids is None:
                ids = on_nas[nas_id] = array("q")
                started[nas_id] = array("q")
            starts, last_nas = started[nas_id], nas_id
        ids.append(login_id)
        starts.append(started_us)
        if login_id == current:
            total += 1
            if nas_id != first_nas or login_id in spread:  # the same login on another NAS
                counts = spread.get(login_id)
                if counts is None:
                    counts = spread[login_id] = {first_nas: total - 1}  # all before this one were on the first
                counts[nas_id] = counts.get(nas_id, 0) + 1
            continue
        if current is not None:
            close(current, total, limit)
        current, total, limit, first_nas = login_id, 1, its_limit, nas_id
    if current is not None:
        close(current, total, limit)
    return SessionCounts(at_limit, below, on_nas, spread, started)


def raw_rows(queryset, size: int = 10_000):
    """The queryset's rows as the driver gives them, without Django's per-value converters: for a read of every
    open session on the RADIUS maintenance thread, which holds the interpreter from the event loop while it
    converts (the converters took a third of that thread's time in a py-spy profile of bench/radius_acct.py).
    Only for columns the driver already gives as the right Python type (integers here)."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # a filter Django knows matches nothing (an empty list of subscribers)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(size):
            yield from batch


def subscribers_over_quota(month_start: dt.date, subscriber_ids=None) -> set[int]:
    """Subscribers (of ``subscriber_ids`` when given) whose traffic since ``month_start`` exceeds the included
    volume of a FUP plan one of their logins gets its speed from: the FUP speed applies to them.

    A FUP plan is one whose traffic policy cuts the speed (``fup`` or ``both``; an ``overage`` plan charges per GB
    instead) with an included volume and a FUP speed. Traffic is counted in the plan's direction by the rule
    rating charges by (``usage.counted_bytes``). A login's plan is found as ``login_policies`` finds it: the
    login's own subscription, else the subscriber's current internet one (most logins have none of their own:
    the console's form does not ask). With logins on two FUP plans, either one's limit passed is enough.
    """
    fup_plans = {
        pk: (included, direction)
        for pk, included, direction in Plan.objects.filter(
            traffic_policy__in=[TrafficPolicy.FUP, TrafficPolicy.BOTH],
            included_bytes__isnull=False,
            fup_download_kbps__isnull=False,
            fup_upload_kbps__isnull=False,
        ).values_list("id", "included_bytes", "traffic_direction")
    }
    if not fup_plans:
        return set()
    # Only who used more than the smallest FUP volume in both directions together can be over any (no direction
    # counts more than both): one aggregate in the database, and the rest (which plan each login gets its speed
    # from, the direction it counts) in Python for those few, not for every subscriber.
    heavy = (
        UsageDay.objects.filter(day__gte=month_start)
        .values("subscriber_id")
        # Two sums, not the sum of input + output: a day's totals may each be at the bigint's limit (issue 12),
        # and their bigint sum raised "out of range", failing the policy store's load. Typed bigint: against a
        # value over 2^31 an integer output is "out of range", and Django answers empty unasked.
        .annotate(
            total=ExpressionWrapper(
                OctetSum("input_octets") + OctetSum("output_octets"), output_field=BigIntegerField()
            ),
            total_in=OctetSum("input_octets"),
            total_out=OctetSum("output_octets"),
        )
        .filter(total__gt=min(included for included, _d in fup_plans.values()))
    )
    if subscriber_ids is not None:
        heavy = heavy.filter(subscriber_id__in=list(subscriber_ids))
    used = {sid: (int(i), int(o)) for sid, i, o in heavy.values_list("subscriber_id", "total_in", "total_out")}
    if not used:
        return set()
    candidates = heavy.values("subscriber_id")  # a subquery: no list of ids, however many
    by_id, by_subscriber = _current_subscriptions(_speed_subscriptions().filter(subscriber_id__in=candidates))
    over: set[int] = set()
    for subscriber_id, subscription_id in Login.objects.filter(subscriber_id__in=candidates).values_list(
        "subscriber_id", "subscription_id"
    ):
        current = by_id.get(subscription_id) if subscription_id else by_subscriber.get(subscriber_id)
        terms = fup_plans.get(current[2]) if current else None
        if terms is not None and counted_bytes(terms[1], *used.get(subscriber_id, (0, 0))) > terms[0]:
            over.add(subscriber_id)
    return over


def nas_by_address() -> dict[str, Nas]:
    return {nas.ip_address: nas for nas in Nas.objects.filter(is_active=True)}


def open_sessions(*, nas: Nas | None = None, subscriber_id: int | None = None, visible_to=None) -> QuerySet[Session]:
    """Sessions online, newest first. ``visible_to`` (a staff user): only those of subscribers in the user's
    branches; a session of no known subscriber belongs to no branch and is hidden from a branch-limited user
    (its login, address and MAC may well be another branch's subscriber's)."""
    qs = Session.objects.filter(status=SessionStatus.OPEN).select_related("nas")
    if visible_to is not None:
        qs = scope_to_branches(qs, visible_to, "subscriber__branch")
    if nas is not None:
        qs = qs.filter(nas=nas)
    if subscriber_id is not None:
        qs = qs.filter(subscriber_id=subscriber_id)
    return qs.order_by("-started_at")


def sessions_of(subscriber_id: int, *, limit: int = 20) -> list[Session]:
    return list(
        Session.objects.filter(subscriber_id=subscriber_id).select_related("nas").order_by("-started_at")[:limit]
    )


def auth_attempts_of(subscriber_id: int, *, limit: int = 10) -> list[AuthAttempt]:
    return list(AuthAttempt.objects.filter(subscriber_id=subscriber_id).select_related("nas")[:limit])


def coa_requests_of(subscriber_id: int, *, limit: int = 10) -> list[CoaRequest]:
    return list(CoaRequest.objects.filter(subscriber_id=subscriber_id).select_related("nas")[:limit])


def nas_overview(*, visible_to=None) -> list[dict]:
    """Per NAS: sessions online now, for the network page; with ``visible_to``, those ``open_sessions`` shows
    the user (their branches' subscribers'). Every NAS is listed: the equipment is shared."""
    online = open_sessions_by_nas(visible_to=visible_to)
    return [{"nas": nas, "online": online.get(nas.pk, 0)} for nas in Nas.objects.order_by("name")]


def open_sessions_by_nas(*, visible_to=None) -> dict[int, int]:
    """Sessions online per NAS id, of those ``open_sessions`` shows ``visible_to``: one grouped count."""
    rows = open_sessions(visible_to=visible_to).order_by().values("nas_id").annotate(n=Count("id"))
    return dict(rows.values_list("nas_id", "n"))


def usage_between(subscriber_id: int, start: dt.date, end: dt.date) -> dict[str, int]:
    # Summed here, one row a day: exact on both engines, where days at the bigint's limit (issue 12) would
    # overflow SQLite's sum() and lose precision in its total().
    days = UsageDay.objects.filter(subscriber_id=subscriber_id, day__gte=start, day__lt=end)
    pairs = list(days.values_list("input_octets", "output_octets"))
    return {"input_octets": sum(i for i, _o in pairs), "output_octets": sum(o for _i, o in pairs)}


def logins_of(subscriber_id: int) -> list[Login]:
    return list(Login.objects.filter(subscriber_id=subscriber_id).select_related("pool").order_by("kind", "username"))


@dataclass(frozen=True, slots=True)
class RadiusTotals:
    """The counters of every RADIUS process (``RadiusNode`` rows) summed: each process counts on its own, and
    the console and ``/metrics`` want one number per NAS. ``last_packet`` is a Unix time per NAS name."""

    counters: dict[str, dict[str, int]]
    last_packet: dict[str, float]
    accounting_queue: int
    spool_backlog: int  # processes whose accounting spool has records waiting for the database
    nodes: list  # the RadiusNode rows, by name


def radius_totals() -> RadiusTotals:
    """One query over a handful of rows (one per running process), whatever the traffic."""
    from .models import RadiusNode

    counters: dict[str, dict[str, int]] = {}
    last_packet: dict[str, float] = {}
    queue = backlog = 0
    nodes = []
    for row in RadiusNode.objects.order_by("node"):
        for nas, values in (row.counters or {}).items():
            into = counters.setdefault(nas, {})
            for name, value in values.items():
                into[name] = into.get(name, 0) + int(value)
        for nas, seen in (row.last_packet or {}).items():
            last_packet[nas] = max(last_packet.get(nas, 0.0), float(seen))
        queue += row.accounting_queue
        backlog += int(row.spool_backlog)
        nodes.append(row)
    return RadiusTotals(counters, last_packet, queue, backlog, nodes)


# How far back /metrics counts finished requests.
FINISHED_WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """The CoA queue per NAS name: requests waiting now, those of them already tried without success, and
    those that ended within ``FINISHED_WINDOW`` by status (acked, naked, failed, superseded)."""

    nas_names: list[str]
    pending: dict[str, int]
    retrying: dict[str, int]
    finished: dict[str, dict[str, int]]


def queue_figures() -> QueueFigures:
    """Two queries whatever the history: the NAS, and the waiting and recently finished requests counted per NAS
    and status (the partial index of waiting requests and the index on ``finished_at``)."""
    since = clock.now() - FINISHED_WINDOW
    names = dict(Nas.objects.values_list("pk", "name"))
    pending: dict[str, int] = {}
    retrying: dict[str, int] = {}
    finished: dict[str, dict[str, int]] = {}
    rows = (
        CoaRequest.objects.filter(Q(status=CoaStatus.PENDING) | Q(finished_at__gte=since))
        .values("nas_id", "status")
        .annotate(n=Count("pk"), tried=Count("pk", filter=~Q(last_error="")))
        .order_by()
    )
    for row in rows:
        name = names.get(row["nas_id"])
        if name is None:
            continue
        if row["status"] == CoaStatus.PENDING:
            pending[name] = row["n"]
            retrying[name] = row["tried"]
        else:
            finished.setdefault(name, {})[row["status"]] = row["n"]
    return QueueFigures(sorted(names.values()), pending, retrying, finished)
