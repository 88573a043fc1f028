"""Time rating: charge subscribers on time plans (charge mode TIME) for their sessions online.

Each pass finds the sessions of subscribers with a time plan that are not fully rated yet (no ``final``
``TimeRating`` row), cuts them at local midnight (``time_math``) and rates every part that is complete: all parts
of a closed session, and of an open one the parts up to a midnight it is known to have lasted past (its last
accounting record), so a session open across a period boundary is charged in the period it was used. A part is
rated once: its ``TimeRating`` row is unique by ``(session, part start)``, inserted before anything is charged,
and the subscription's row lock serialises two passes over one subscriber (the loser finds the part rated).

Time is taken from the subscription's time packages in effect at the part's start, the soonest to expire first,
then paid: units of the plan's ``time_unit`` at the ``unit_price`` of the part's day. The money is a ``TIME``
charge with its ledger transaction (``time:<session>:<part start>``), dated the part's day, quantity = the
part's seconds online. A session that cannot be rated (negative or absurd duration, stopped before it started)
gets one final row saying why and is logged, once.

Reads network's ``Session`` (imported where used: the network app imports billing, not the other way round at
import time).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from abonent.catalog.models import TIME_UNIT_SECONDS, ChargeMode, PlanPrice
from abonent.core import clock, events

from .. import ledger
from ..models import (
    Charge,
    ChargeKind,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
    TimePackagePurchase,
    TimeRating,
    TransactionKind,
)
from . import time_math

logger = logging.getLogger(__name__)

# Sessions that started longer ago than this are not looked at: rating runs every few minutes, and a session
# older than two billing periods that nobody rated is a matter for a person (docs/billing-time-rating.md).
LOOKBACK = dt.timedelta(days=62)
# A session longer than this is a NAS's broken counter or clock, not a customer online.
MAX_SESSION = dt.timedelta(days=31)
# Sessions handled per query: a pass walks the candidates in id order, this many at a time.
BATCH = 1000


@dataclass
class TimeRatingResult:
    parts: int = 0
    charges: int = 0
    amount: Decimal = Decimal("0.00")
    package_seconds: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    subscribers: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Session:
    id: int
    subscriber_id: int
    status: str
    started_at: dt.datetime
    stopped_at: dt.datetime | None
    session_time: int
    login_subscription_id: int | None = None


def _on_time_plans(horizon: dt.date):
    """Subscriptions on time plans that may have sessions since ``horizon``."""
    return Subscription.objects.filter(plan__charge_mode=ChargeMode.TIME).filter(
        ~Q(status=SubscriptionStatus.TERMINATED) | Q(ended_on__gte=horizon)
    )


def _time_subscriptions(horizon: dt.date) -> dict[int, list[tuple[int, dt.date, dt.date | None]]]:
    """Subscriber → its subscriptions on time plans that may have sessions since ``horizon``, newest first."""
    result: dict[int, list[tuple[int, dt.date, dt.date | None]]] = {}
    rows = (
        _on_time_plans(horizon)
        .order_by("-started_on", "-id")
        .values_list("subscriber_id", "id", "started_on", "ended_on")
    )
    for subscriber_id, sub_id, started_on, ended_on in rows:
        result.setdefault(subscriber_id, []).append((sub_id, started_on, ended_on))
    return result


def _subscription_for(candidates, day: dt.date) -> int | None:
    for sub_id, started_on, ended_on in candidates:
        if started_on <= day and (ended_on is None or ended_on >= day):
            return sub_id
    return None


def time_plan_since(subscriptions) -> dict[int, dt.datetime]:
    """Subscription id → the moment its time plan took effect, for those moved onto a time plan from a plan of
    another charge mode (a plan change is made in place: ``started_on`` stays the monthly plan's). Time online
    before it was paid for by that plan's fee and is not rated."""
    rows = (
        SubscriptionEvent.objects.filter(
            subscription_id__in=subscriptions,
            kind=SubscriptionEventKind.PLAN_CHANGED,
            to_plan__charge_mode=ChargeMode.TIME,
        )
        .exclude(from_plan__charge_mode=ChargeMode.TIME)
        .values_list("subscription_id", "effective_at")
    )
    result: dict[int, dt.datetime] = {}
    for sub_id, effective_at in rows:
        if sub_id not in result or effective_at > result[sub_id]:
            result[sub_id] = effective_at
    return result


def shared_logins(subscriber_ids) -> set[int]:
    """Subscribers whose logins bound to no subscription are not the time subscription's alone: they have another
    live subscription on a plan not charged by time (home internet beside hotspot time). Only sessions of logins
    bound to the time subscription are rated for them."""
    return set(
        Subscription.objects.filter(subscriber_id__in=subscriber_ids)
        .exclude(status=SubscriptionStatus.TERMINATED)
        .exclude(plan__charge_mode=ChargeMode.TIME)
        .values_list("subscriber_id", flat=True)
        .distinct()
    )


def time_sessions(Session, subscriber_ids):
    """The sessions of ``subscriber_ids`` that may be on a time plan: of logins bound to a time subscription or
    to none (``owner`` then decides). One join: a home subscriber's PPPoE sessions are never read."""
    return Session.objects.filter(subscriber_id__in=subscriber_ids).filter(
        Q(login__isnull=True)
        | Q(login__subscription__isnull=True)
        | Q(login__subscription__plan__charge_mode=ChargeMode.TIME)
    )


def owner(login_subscription_id, candidates, day: dt.date, shared: bool) -> int | None:
    """The time subscription a session is rated for: its login's, else (a login bound to none) the one in effect
    on its day unless the subscriber has another live subscription those sessions may be for."""
    if login_subscription_id is not None:
        return login_subscription_id if any(c[0] == login_subscription_id for c in candidates) else None
    return None if shared else _subscription_for(candidates, day)


def _problem(session: _Session, now: dt.datetime, *, rated: bool) -> str:
    """Why the session cannot be rated, or "". A session rated day by day is not absurd for lasting long: its
    counter was believed every day."""
    if session.session_time < 0:
        return "negative duration"
    if session.stopped_at is not None and session.stopped_at < session.started_at:
        return "stopped before it started"
    end = session.stopped_at or session.started_at + dt.timedelta(seconds=session.session_time)
    if not rated and end - session.started_at > MAX_SESSION:
        return "absurd duration"
    if end > now + dt.timedelta(days=1) or session.started_at > now + dt.timedelta(days=1):
        return "in the future"
    return ""


def unfinished(Session):
    """Sessions rating is not done with: no final row, or a final row a later Stop has since outrun (a Stop
    delivered from a NAS's spool after the sweeper closed the session at its last interim)."""
    finished = TimeRating.objects.filter(session_id=OuterRef("pk"), final=True).filter(
        ~Q(skipped="") | Q(part_end__gte=OuterRef("stopped_at"))
    )
    return ~Exists(finished)


def rate_time(
    now: dt.datetime | None = None, *, subscriber_ids=None, cut_subscription: int | None = None
) -> TimeRatingResult:
    """One rating pass over every subscriber on a time plan (or ``subscriber_ids``). Safe to run at any time, as
    often as wanted, and twice at once: each part of a session is charged once. ``cut_subscription``: rate that
    subscription's open sessions up to now as well (its time plan is being changed)."""
    from abonent.network.models import Session  # network imports billing: see the module's docstring

    now = now or clock.now()
    result = TimeRatingResult()
    horizon = now - LOOKBACK
    horizon_day = timezone.localdate(horizon)
    subscriptions = _time_subscriptions(horizon_day)
    wanted = set(subscriptions) if subscriber_ids is None else set(subscriptions) & set(subscriber_ids)
    if not wanted:
        return result
    # A subquery rather than a list of ids: thousands of hotspot subscribers would pass SQLite's parameter limit.
    whose = sorted(wanted) if subscriber_ids is not None else _on_time_plans(horizon_day).values("subscriber_id")
    shared = shared_logins(whose)
    since = time_plan_since(
        [sub[0] for sid in wanted for sub in subscriptions[sid]]
        if subscriber_ids is not None
        else _on_time_plans(horizon_day).values("pk")
    )
    sessions = time_sessions(Session, whose).filter(started_at__gte=horizon).filter(unfinished(Session)).order_by("id")
    last_id = 0
    while True:
        rows = list(
            sessions.filter(id__gt=last_id).values_list(
                "id",
                "subscriber_id",
                "status",
                "started_at",
                "stopped_at",
                "session_time",
                "login__subscription_id",
            )[:BATCH]
        )
        if not rows:
            break
        last_id = rows[-1][0]
        by_subscription: dict[int, list[_Session]] = {}
        for row in rows:
            session = _Session(*row)
            sub_id = owner(
                session.login_subscription_id,
                subscriptions[session.subscriber_id],
                timezone.localdate(session.started_at),
                session.subscriber_id in shared,
            )
            if sub_id is not None:
                by_subscription.setdefault(sub_id, []).append(session)
        for sub_id, group in by_subscription.items():
            _rate_subscription(sub_id, group, now, result, since=since.get(sub_id), cut=sub_id == cut_subscription)
    for subscriber_id in sorted(result.subscribers):
        events.emit("billing.balance_changed", subscriber_id=subscriber_id)
    if result.parts or result.skipped:
        logger.info(
            "time rating: %d parts, %d charges, %s, %d s from packages, %d sessions skipped",
            result.parts,
            result.charges,
            result.amount,
            result.package_seconds,
            len(result.skipped),
        )
    return result


@dataclass
class _Rated:
    """What is rated of one local day of a session: up to ``end``, ``money_seconds`` paid, rows ``0..revision``."""

    end: dt.datetime
    money_seconds: int
    revision: int


@transaction.atomic
def _rate_subscription(
    sub_id: int,
    sessions: list[_Session],
    now: dt.datetime,
    result: TimeRatingResult,
    *,
    since: dt.datetime | None = None,
    cut: bool = False,
) -> None:
    # The row lock serialises passes (and package purchases) for this subscription; read after it.
    Subscription.objects.select_for_update().filter(pk=sub_id).values_list("pk", flat=True).get()
    subscription = Subscription.objects.select_related("plan", "plan__service").get(pk=sub_id)
    plan = subscription.plan
    if plan.charge_mode != ChargeMode.TIME:
        return  # switched to another plan meanwhile: rated no more (docs)
    prices = list(PlanPrice.objects.filter(plan=plan).order_by("-valid_from"))
    rated: dict[int, dict[dt.date, _Rated]] = {}
    for session_id, day, part_end, money_seconds, revision in TimeRating.objects.filter(
        session_id__in=[s.id for s in sessions]
    ).values_list("session_id", "day", "part_end", "money_seconds", "revision"):
        days = rated.setdefault(session_id, {})
        done = days.get(day)
        if done is None:
            days[day] = _Rated(part_end, money_seconds, revision)
        else:
            done.end, done.money_seconds = max(done.end, part_end), done.money_seconds + money_seconds
            done.revision = max(done.revision, revision)
    context = _Context(subscription, prices, now, result, since=since, cut=cut)
    for session in sorted(sessions, key=lambda s: (s.started_at, s.id)):
        context.rate_session(session, rated.get(session.id, {}))


class _Context:
    """What rating one subscription's sessions needs at hand: its plan, prices, accounts and packages."""

    def __init__(
        self,
        subscription: Subscription,
        prices: list[PlanPrice],
        now: dt.datetime,
        result,
        *,
        since: dt.datetime | None = None,
        cut: bool = False,
    ):
        self.subscription = subscription
        self.plan = subscription.plan
        self.prices = prices
        self.now = now
        self.result = result
        self.since = since
        self.cut = cut
        self.unit_seconds = TIME_UNIT_SECONDS[self.plan.time_unit]
        self.free_seconds = self.plan.free_minutes * 60
        self._accounts: tuple[int, int] | None = None
        self._packages: list[TimePackagePurchase] | None = None
        # Package time goes to sessions in the order they started, whenever the passes run: once a session has a
        # part not ready yet, the parts of sessions started after it wait (while there are packages to share).
        self.hold_from: dt.datetime | None = None

    def price_on(self, day: dt.date) -> PlanPrice | None:
        return next((p for p in self.prices if p.valid_from <= day), None)

    def accounts(self) -> tuple[int, int]:
        if self._accounts is None:
            self._accounts = (
                ledger.subscriber_account(self.subscription.subscriber_id).pk,
                ledger.revenue_account(self.plan.service).pk,
            )
        return self._accounts

    def packages(self) -> list[TimePackagePurchase]:
        if self._packages is None:
            self._packages = list(
                TimePackagePurchase.objects.select_for_update()
                .filter(subscription=self.subscription, used_seconds__lt=F("seconds"))
                .order_by("expires_at", "id")
            )
        return self._packages

    def _held(self, part: time_math.Part) -> bool:
        return (
            self.hold_from is not None
            and part.start >= self.hold_from
            and any(p.left_seconds > 0 for p in self.packages())
        )

    def _hold(self, part: time_math.Part) -> None:
        if self.hold_from is None or part.start < self.hold_from:
            self.hold_from = part.start

    def _skip(self, session: _Session, why: str) -> None:
        try:
            with transaction.atomic():
                TimeRating.objects.create(
                    subscription=self.subscription,
                    session_id=session.id,
                    part_start=session.started_at,
                    part_end=session.started_at,
                    day=timezone.localdate(session.started_at),
                    final=True,
                    skipped=why,
                    created_at=self.now,
                )
        except IntegrityError:
            return  # rated or skipped already
        self.result.skipped.append((session.id, why))
        logger.warning("time rating: session %s of subscriber %s skipped: %s", session.id, session.subscriber_id, why)

    def rate_session(self, session: _Session, rated: dict[dt.date, _Rated]) -> None:
        why = _problem(session, self.now, rated=bool(rated))
        if why:
            if not rated:
                self._skip(session, why)
            return
        # A stop reported a little ahead of our clock is rated once our clock gets there.
        closed = session.stopped_at is not None and session.stopped_at <= self.now
        end = session.stopped_at if closed else session.started_at + dt.timedelta(seconds=session.session_time)
        if self.cut and not closed:
            end = self.now  # the plan changes now: what the session used on the time plan is owed now
        end = min(end, self.now)
        start = session.started_at if self.since is None else max(session.started_at, self.since)
        parts = time_math.split(start, end)
        if closed and not parts and not rated:  # no time online (on the time plan): nothing owed, never again
            self._skip(session, "no time online" if start == session.started_at else "before the time plan")
            return
        paid_before = 0
        for part in parts:
            last = closed and part.index == len(parts) - 1
            done = rated.get(part.day)
            if done is not None:
                paid_before += done.money_seconds
                if done.end >= part.end:
                    continue
                # The session went on past what was rated of this day (a later Stop, the rest of a cut day).
                cut_at = max(done.end, part.start)
                part = time_math.Part(
                    index=part.index,
                    start=cut_at,
                    end=part.end,
                    day=part.day,
                    offset_start=part.offset_end - int((part.end - cut_at).total_seconds()),
                    offset_end=part.offset_end,
                    ends_at_midnight=part.ends_at_midnight,
                )
                revision = done.revision + 1
            else:
                revision = 0
            if not (last or part.ends_at_midnight or self.cut) or self._held(part):
                self._hold(part)
                break  # the open session's current day: rated once it is over
            paid = self._rate_part(session, part, paid_before, final=last, revision=revision)
            if paid is None:
                self._hold(part)
                break  # no price that day: tried again next pass
            paid_before += paid

    def _rate_part(
        self, session: _Session, part: time_math.Part, paid_before: int, *, final: bool, revision: int = 0
    ) -> int | None:
        price = self.price_on(part.day)
        if price is None or price.unit_price is None:
            logger.warning(
                "time rating: plan %s has no price per unit on %s (session %s)", self.plan.code, part.day, session.id
            )
            return None
        billable = time_math.billable_seconds(part, self.free_seconds)
        in_effect = [p for p in (self.packages() if billable else []) if p.starts_at <= part.start < p.expires_at]
        priced = time_math.price_part(
            billable,
            package_available=sum(p.left_seconds for p in in_effect),
            paid_before=paid_before,
            unit_seconds=self.unit_seconds,
            unit_price=price.unit_price,
            minimum=self.plan.minimum_session_charge,
        )
        try:
            with transaction.atomic():
                if final:  # a Stop later than the one rated: this part is the session's last now
                    TimeRating.objects.filter(session_id=session.id, final=True).update(final=False)
                rating = TimeRating.objects.create(
                    subscription=self.subscription,
                    session_id=session.id,
                    part_start=part.start,
                    part_end=part.end,
                    day=part.day,
                    revision=revision,
                    seconds=part.seconds,
                    package_seconds=priced.package_seconds,
                    money_seconds=priced.money_seconds,
                    units=priced.units,
                    amount=priced.amount,
                    price=price,
                    final=final,
                    created_at=self.now,
                )
        except IntegrityError:
            return None  # rated by another pass that got here first
        self._take_from_packages(in_effect, priced.package_seconds)
        if priced.amount > 0:
            rating.charge = self._charge(session, part, priced, price)
            rating.save(update_fields=["charge"])
        self.result.parts += 1
        self.result.package_seconds += priced.package_seconds
        if priced.amount > 0 or priced.package_seconds:
            self.result.subscribers.add(self.subscription.subscriber_id)
        return priced.money_seconds

    def _take_from_packages(self, packages: list[TimePackagePurchase], seconds: int) -> None:
        for package in packages:
            if seconds <= 0:
                break
            take = min(seconds, package.left_seconds)
            if take <= 0:
                continue
            TimePackagePurchase.objects.filter(pk=package.pk).update(used_seconds=F("used_seconds") + take)
            package.used_seconds += take
            seconds -= take

    def _charge(self, session: _Session, part: time_math.Part, priced, price: PlanPrice) -> Charge:
        account_id, revenue_id = self.accounts()
        start, end = timezone.localtime(part.start), timezone.localtime(part.end)
        tx, _created = ledger.post(
            key=f"time:{session.id}:{int(part.start.timestamp())}",
            kind=TransactionKind.TIME,
            effective_date=part.day,
            legs=[(account_id, -priced.amount), (revenue_id, priced.amount)],
            subscriber_id=self.subscription.subscriber_id,
            memo=_("Time online %(day)s %(start)s–%(end)s: %(minutes)s min")
            % {
                "day": date_format(part.day, "SHORT_DATE_FORMAT"),
                "start": start.strftime("%H:%M"),
                "end": "24:00" if part.ends_at_midnight else end.strftime("%H:%M"),
                "minutes": -(-part.seconds // 60),
            },
        )
        self.result.charges += 1
        self.result.amount += priced.amount
        return Charge.objects.create(
            subscription=self.subscription,
            kind=ChargeKind.TIME,
            period_start=part.day,
            period_end=part.day + dt.timedelta(days=1),
            amount=priced.amount,
            price=price,
            quantity=part.seconds,
            transaction=tx,
        )
