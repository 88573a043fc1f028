"""What the dashboard shows a user, by permission: the newest snapshot read once and cut to the user's branches,
and the few live figures counted on each view (each an indexed query).

- ``network.view``: NAS health (sessions online, last accounting, silent NAS, CoA failures of the last hour and
  requests waiting), sessions online over the day and week, IP pools near exhaustion. The NAS and pools are
  shared equipment, listed for everyone; the sessions online are counted, for a branch-limited user, of their
  branches' subscribers only (live, as the sessions page counts them), and the charts and peaks over time, which
  the samples keep for the whole network only, are labelled so;
- ``payment.view``: payments today by channel (live) and this month (snapshot + today), per day this month;
  with ``payment.take`` the cashier's own cash today;
- ``finance.view``: receivables, debtors by ageing bucket, and for a user without a branch limit revenue by
  service this month and ARPU (kept for the whole ISP only);
- ``ticket.view``: open tickets by status and age, the SLA's overdue and escalated, open mass incidents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise

from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.core import clock
from abonent.core.money import currency_symbol, quantize
from abonent.helpdesk.incidents.selectors import incidents as incidents_with_status
from abonent.helpdesk.models import OPEN_STATUSES, TicketStatus
from abonent.helpdesk.selectors import sla_counts, visible_tickets
from abonent.network import selectors as network
from abonent.network.monitoring import selectors as monitoring
from abonent.network.monitoring.health import PoolLevel
from abonent.payments.models import PaymentStatus
from abonent.payments.selectors.journal import CashTotals, cash_day_totals
from abonent.payments.selectors.payments import visible_payments
from abonent.staff.permissions import Perm, allowed_branch_ids, has_perm

from .models import Snapshot
from .snapshot import AGEING_DAYS, FORMAT_VERSION, NO_BRANCH

ZERO = Decimal("0.00")
# A snapshot older than this is shown with a warning: the worker that takes it every five minutes is not running.
STALE_AFTER = dt.timedelta(minutes=20)
# CoA failures on the NAS health widget: those of the last hour (the index on finished_at).
COA_WINDOW = dt.timedelta(hours=1)
# Open mass incidents listed on the dashboard; the rest are a click away.
OPEN_INCIDENTS_SHOWN = 5
# Ages of open tickets, in days: under 1, 1–3, 3–7, over 7.
TICKET_AGE_DAYS = (1, 3, 7)


def channel_label(channel: str) -> str:
    """A payment channel as people call it: ``agent:<code>`` is a terminal network, the rest by name."""
    names = {
        "cash": gettext_lazy("Cash desk"),
        "bank": gettext_lazy("Bank transfers"),
        "manual": gettext_lazy("Entered by staff"),
        "yookassa": "YooKassa",
    }
    if channel.startswith("agent:"):
        return _("Terminals: %(agent)s") % {"agent": channel[len("agent:") :]}
    return str(names.get(channel, channel))


@dataclass(frozen=True)
class ChannelFigure:
    channel: str
    label: str
    amount: Decimal
    count: int


def _channels(by_channel: dict[str, list]) -> list[ChannelFigure]:
    figures = [ChannelFigure(c, channel_label(c), quantize(v[0]), v[1]) for c, v in by_channel.items()]
    return sorted(figures, key=lambda f: (-f.amount, f.label))


# --- the snapshot, cut to the user ----------------------------------------------------------------------------


@dataclass
class SnapshotView:
    taken_at: dt.datetime
    stale: bool
    day: dt.date
    month: dt.date
    previous_month: dt.date
    whole_isp: bool  # the user has no branch limit: revenue and ARPU are theirs to see
    debtors: int = 0
    receivables: Decimal = ZERO
    ageing: list[tuple[str, int, Decimal]] = field(default_factory=list)
    # Payments recorded until ``payments_until``: this month's and today's by channel, per day.
    payments_until: dt.datetime | None = None
    payments_by_channel: dict[str, list] = field(default_factory=dict)
    payments_today_by_channel: dict[str, list] = field(default_factory=dict)
    payments_by_day: dict[str, Decimal] = field(default_factory=dict)
    subscribers: int = 0
    revenue: dict = field(default_factory=dict)
    arpu: dict = field(default_factory=dict)
    online: dict = field(default_factory=dict)

    @property
    def of_today(self) -> bool:
        return self.day == clock.today()


def _ageing_labels() -> list[str]:
    labels, lower = [], 0
    for upper in AGEING_DAYS:
        labels.append(_("%(low)d–%(high)d days") % {"low": lower, "high": upper})
        lower = upper + 1
    labels.append(_("over %(days)d days") % {"days": AGEING_DAYS[-1]})
    return labels


def snapshot_view(user, snapshot: Snapshot | None, now: dt.datetime) -> SnapshotView | None:
    """The newest snapshot's figures summed over the branches ``user`` may see (and those of no subscriber)."""
    if snapshot is None or snapshot.figures.get("version") != FORMAT_VERSION:
        return None
    figures = snapshot.figures
    branch_ids = allowed_branch_ids(user)
    branches = figures.get("branches", {})
    keys = list(branches) if branch_ids is None else [str(b) for b in branch_ids] + [NO_BRANCH]
    view = SnapshotView(
        taken_at=snapshot.taken_at,
        stale=now - snapshot.taken_at > STALE_AFTER,
        day=dt.date.fromisoformat(figures["day"]),
        month=dt.date.fromisoformat(figures["month"]),
        previous_month=dt.date.fromisoformat(figures["previous_month"]),
        whole_isp=branch_ids is None,
        payments_until=dt.datetime.fromisoformat(figures["payments_until"]),
    )
    ageing = [[0, ZERO] for _ in range(len(AGEING_DAYS) + 1)]
    for key in keys:
        entry = branches.get(key)
        if not entry:
            continue
        view.debtors += entry.get("debtors", 0)
        view.receivables += Decimal(entry.get("receivables", "0"))
        for index, (count, amount) in enumerate(entry.get("ageing", [])):
            ageing[index][0] += count
            ageing[index][1] += Decimal(amount)
        payments = entry.get("payments", {})
        for into_period, period in (
            (view.payments_by_channel, "by_channel"),
            (view.payments_today_by_channel, "today_by_channel"),
        ):
            for channel, (amount, count) in payments.get(period, {}).items():
                into = into_period.setdefault(channel, [ZERO, 0])
                into[0] += Decimal(amount)
                into[1] += count
        for day, amount in payments.get("by_day", {}).items():
            view.payments_by_day[day] = view.payments_by_day.get(day, ZERO) + Decimal(amount)
        view.subscribers += entry.get("subscribers", 0)
    view.ageing = [(label, count, amount) for label, (count, amount) in zip(_ageing_labels(), ageing, strict=True)]
    if view.whole_isp:
        view.revenue = {
            "services": [
                {"name": s["name"], "month": Decimal(s["month"]), "previous": Decimal(s["previous"])}
                for s in figures["revenue"]["services"]
            ],
            "month": Decimal(figures["revenue"]["month"]),
            "previous": Decimal(figures["revenue"]["previous"]),
        }
        arpu = figures["arpu"]
        view.arpu = {
            "month": Decimal(arpu["month"]) if arpu["month"] is not None else None,
            "month_subscribers": arpu["month_subscribers"],
            "previous": Decimal(arpu["previous"]) if arpu["previous"] is not None else None,
            "previous_subscribers": arpu["previous_subscribers"],
        }
    view.online = figures.get("online", {})
    return view


# --- live figures ---------------------------------------------------------------------------------------------


def payments_since(user, since: dt.datetime) -> dict[str, list]:
    """Payments recorded since ``since`` and not cancelled, by channel: ``{channel: [amount, count]}`` (the index
    on ``created_at``; the user's branches and the suspense queue, as the journal shows them). The dashboard asks
    for the few minutes since its snapshot, or for the whole of today when the snapshot is of another day."""
    rows = (
        visible_payments(user)
        .filter(created_at__gte=since)
        .exclude(status=PaymentStatus.CANCELLED)
        .values("channel")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by()
    )
    return {row["channel"]: [quantize(row["total"]), row["n"]] for row in rows}


def _added(*periods: dict[str, list]) -> dict[str, list]:
    total: dict[str, list] = {}
    for period in periods:
        for channel, (amount, count) in period.items():
            into = total.setdefault(channel, [ZERO, 0])
            into[0] += amount
            into[1] += count
    return total


@dataclass(frozen=True)
class TicketRow:
    status: str
    label: str
    by_age: list[int]
    total: int


def open_tickets(user, now: dt.datetime) -> list[TicketRow]:
    """Open tickets of the user's branches by status and age (days since opened): one query."""
    bounds = [now - dt.timedelta(days=days) for days in TICKET_AGE_DAYS]
    aggregates = {"age0": Count("id", filter=Q(created_at__gt=bounds[0]))}
    for index in range(1, len(bounds)):
        aggregates[f"age{index}"] = Count(
            "id", filter=Q(created_at__lte=bounds[index - 1], created_at__gt=bounds[index])
        )
    aggregates[f"age{len(bounds)}"] = Count("id", filter=Q(created_at__lte=bounds[-1]))
    rows = {
        row["status"]: row
        for row in visible_tickets(user)
        .filter(status__in=list(OPEN_STATUSES))
        .values("status")
        .annotate(**aggregates)
        .order_by()
    }
    result = []
    for status in (TicketStatus.NEW, TicketStatus.IN_PROGRESS, TicketStatus.WAITING_SUBSCRIBER):
        row = rows.get(status, {})
        by_age = [row.get(f"age{i}", 0) for i in range(len(bounds) + 1)]
        result.append(TicketRow(status, str(status.label), by_age, sum(by_age)))
    return result


def ticket_age_labels() -> list[str]:
    labels = [_("under %(n)d day") % {"n": TICKET_AGE_DAYS[0]}]
    for low, high in pairwise(TICKET_AGE_DAYS):
        labels.append(_("%(low)d–%(high)d days") % {"low": low, "high": high})
    labels.append(_("over %(days)d days") % {"days": TICKET_AGE_DAYS[-1]})
    return labels


@dataclass(frozen=True)
class NasHealthRow:
    state: monitoring.NasState
    online: int  # sessions online the user may see (all of them for a user without a branch limit)
    coa_failures: int
    coa_pending: int


@dataclass
class NetworkWidget:
    nas: list[NasHealthRow]
    silent: list
    online: int
    sampled_at: dt.datetime | None  # None: ``online`` is counted live
    pools: list  # monitoring.PoolState, fullest first
    pools_alarmed: list
    whole_network: bool = True  # False: ``online`` is of the user's branches, the snapshot's series are not


def network_widget(user, now: dt.datetime) -> NetworkWidget:
    """NAS health and pools: the NAS with their health, CoA failures of the last hour and requests waiting, the
    pools with their use. Four small queries, and for a branch-limited user a grouped count of their branches'
    sessions online (the sampler's figures are per NAS, of every subscriber)."""
    states = monitoring.nas_states(now)
    failures = monitoring.coa_failures_by_nas(now - COA_WINDOW)
    pending = monitoring.coa_pending_by_nas()
    pools = monitoring.pool_states()
    whole_network = allowed_branch_ids(user) is None
    if whole_network:
        online = {s.nas.pk: s.open_sessions for s in states}
        sampled = [s.sampled_at for s in states if s.sampled_at is not None]
        sampled_at = max(sampled) if sampled else None
    else:
        online, sampled_at = network.open_sessions_by_nas(visible_to=user), None
    return NetworkWidget(
        nas=[
            NasHealthRow(s, online.get(s.nas.pk, 0), failures.get(s.nas.pk, 0), pending.get(s.nas.pk, 0))
            for s in states
        ],
        silent=[s.nas for s in states if s.silent],
        online=sum(online.values()),
        sampled_at=sampled_at,
        pools=pools,
        pools_alarmed=[p for p in pools if p.fill.level != PoolLevel.OK],
        whole_network=whole_network,
    )


# --- the whole page -------------------------------------------------------------------------------------------


@dataclass
class Dashboard:
    now: dt.datetime
    snapshot: SnapshotView | None
    network: NetworkWidget | None = None
    payments_today: list[ChannelFigure] | None = None
    payments_today_total: Decimal = ZERO
    payments_month: list[ChannelFigure] | None = None
    payments_month_total: Decimal = ZERO
    cash: CashTotals | None = None
    finance: bool = False
    tickets: list[TicketRow] | None = None
    sla: dict[str, int] | None = None  # open tickets overdue now, and escalated but not overdue yet
    incidents: list | None = None  # the open mass incidents, newest first (helpdesk.incidents)
    charts: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.network or self.payments_today is not None or self.finance or self.tickets is not None)


def _midnight_seconds(day: dt.date) -> int:
    return int(timezone.make_aware(dt.datetime.combine(day, dt.time.min)).timestamp())


def _payments(board: Dashboard, user, view: SnapshotView | None, today: dt.date) -> None:
    """Today's and this month's payments by channel, and per day: the snapshot's, until its ``payments_until``,
    and those recorded since, counted live (a few minutes' worth, whatever the day's volume). A snapshot of
    another day (the worker stopped) leaves today wholly live and the month as that snapshot had it."""
    if view is not None and view.of_today:
        live = payments_since(user, view.payments_until)
        today_figures = _added(view.payments_today_by_channel, live)
        month = _added(view.payments_by_channel, live)
    else:
        today_figures = payments_since(user, timezone.make_aware(dt.datetime.combine(today, dt.time.min)))
        month = _added(view.payments_by_channel) if view is not None else None
    board.payments_today = _channels(today_figures)
    board.payments_today_total = sum((f.amount for f in board.payments_today), ZERO)
    if month is None:
        return
    board.payments_month = _channels(month)
    board.payments_month_total = sum((f.amount for f in board.payments_month), ZERO)
    # Every day of the month up to the snapshot's day, none left out; today's with what came since.
    by_day, day = {}, view.month
    while day <= view.day:
        by_day[day.isoformat()] = view.payments_by_day.get(day.isoformat(), ZERO)
        day += dt.timedelta(days=1)
    if view.of_today:
        by_day[today.isoformat()] = board.payments_today_total
    board.charts["payments_days"] = {
        "x": [_midnight_seconds(dt.date.fromisoformat(day)) for day in by_day],
        "series": [
            {"label": _("Payments"), "values": [float(v) for v in by_day.values()], "unit": "money", "bars": True}
        ],
        "currency": currency_symbol(),
    }


def build_dashboard(user) -> Dashboard:
    """Everything the user may see on the dashboard: the snapshot (one query) and the live figures of each widget
    they hold the permission for."""
    now = clock.now()
    today = timezone.localtime(now).date()
    wants_snapshot = any(has_perm(user, p) for p in (Perm.NETWORK_VIEW, Perm.PAYMENT_VIEW, Perm.FINANCE_VIEW))
    snapshot = Snapshot.objects.order_by("-taken_at").first() if wants_snapshot else None
    view = snapshot_view(user, snapshot, now)
    board = Dashboard(now=now, snapshot=view)
    if has_perm(user, Perm.NETWORK_VIEW):
        board.network = network_widget(user, now)
        if view is not None and view.online.get("day", {}).get("x"):
            online = view.online
            # The samples are of the whole network: so labelled for a user who otherwise sees their branches'.
            label = _("Sessions online") if board.network.whole_network else _("Sessions online, whole network")
            for period in ("day", "week"):
                board.charts[f"online_{period}"] = {
                    "x": online[period]["x"],
                    "series": [{"label": label, "values": online[period]["sessions"], "unit": "count"}],
                }
    if has_perm(user, Perm.PAYMENT_VIEW):
        _payments(board, user, view, today)
        if has_perm(user, Perm.PAYMENT_TAKE):
            board.cash = cash_day_totals(user.pk, today)
    board.finance = has_perm(user, Perm.FINANCE_VIEW)
    if has_perm(user, Perm.TICKET_VIEW):
        board.tickets = open_tickets(user, now)
        board.sla = sla_counts(user, now)
        board.incidents = list(incidents_with_status("open").order_by("-starts_at", "-id")[:OPEN_INCIDENTS_SHOWN])
    return board
