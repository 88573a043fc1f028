"""Reads about payment agents: the protocol endpoint's cached view of one, and the daily reconciliation report."""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import time
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from abonent.core import clock
from abonent.core.money import quantize

from ..models import Agent, Payment, PaymentStatus
from ..models.agents import parse_networks
from .dates import clamp_day, is_sane_day


@dataclass(frozen=True)
class AgentView:
    """What the protocol endpoint needs of an agent, read once per ``ABONENT_AGENT_CACHE_SECONDS``."""

    pk: int
    code: str
    active: bool
    login: str
    secret_hash: str
    networks: tuple
    min_sum: Decimal
    max_sum: Decimal
    active_accounts_only: bool
    show_details: bool
    tz: dt.tzinfo

    @property
    def channel(self) -> str:
        return f"agent:{self.code}"

    def allows(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def agent_time_zone(agent: Agent) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(agent.time_zone) if agent.time_zone else timezone.get_default_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.get_default_timezone()


def agent_today(agent: Agent) -> dt.date:
    """Today by the agent's clock: the day its register and its reconciliation are about."""
    return clock.now().astimezone(agent_time_zone(agent)).date()


def _view_of(agent: Agent) -> AgentView:
    try:
        networks = tuple(parse_networks(agent.networks))
    except ValueError:
        networks = ()  # an unreadable list refuses everyone, as an empty one does
    return AgentView(
        pk=agent.pk,
        code=agent.code,
        active=agent.active,
        login=agent.login,
        secret_hash=agent.secret_hash,
        networks=networks,
        min_sum=agent.min_sum,
        max_sum=agent.max_sum,
        active_accounts_only=agent.active_accounts_only,
        show_details=agent.show_details,
        tz=agent_time_zone(agent),
    )


# code → (monotonic deadline, view or None for no such agent). Per process; actions drop their agent's entry.
_cache: dict[str, tuple[float, AgentView | None]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 1000


def agent_for_protocol(code: str) -> AgentView | None:
    """The agent with ``code`` as of at most ``ABONENT_AGENT_CACHE_SECONDS`` ago (None: no such agent). Spares the
    hot path a query per payment; a disabled agent or a rotated secret takes effect within those seconds."""
    now = time.monotonic()
    hit = _cache.get(code)
    if hit is not None and hit[0] > now:
        return hit[1]
    agent = Agent.objects.filter(code=code).first()
    view = _view_of(agent) if agent is not None else None
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()  # someone walking codes: start over rather than grow
        _cache[code] = (now + settings.ABONENT_AGENT_CACHE_SECONDS, view)
    return view


def forget_agent(code: str | None = None) -> None:
    with _cache_lock:
        if code is None:
            _cache.clear()
        else:
            _cache.pop(code, None)


def list_agents():
    return Agent.objects.order_by("code")


# --- The daily reconciliation report ------------------------------------------------------------------------


def commission_of(agent: Agent, amount: Decimal) -> Decimal:
    """What the agent keeps of one payment: percent plus fixed, not below the minimum, never above the payment."""
    value = quantize(amount * agent.commission_percent / Decimal(100) + agent.commission_fixed)
    return min(max(value, agent.commission_min), amount)


@dataclass
class ReportLine:
    payment: Payment
    commission: Decimal
    received_local: dt.datetime
    late: bool = False  # taken on another day, recorded on this one


@dataclass
class AgentDayReport:
    """One agent's day, in the agent's time zone: the payments it took that day (by ``txn_date``), what it keeps
    as commission and what it owes us, and the payments of earlier days that only reached us this day."""

    agent: Agent
    day: dt.date
    lines: list[ReportLine] = field(default_factory=list)
    late: list[ReportLine] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.lines)

    @property
    def total(self) -> Decimal:
        return sum((line.payment.amount for line in self.lines), Decimal("0.00"))

    @property
    def commission(self) -> Decimal:
        return sum((line.commission for line in self.lines), Decimal("0.00"))

    @property
    def net(self) -> Decimal:
        return self.total - self.commission


# A cancelled payment was a mistake of ours and was reversed: it is not money the agent owes.
_COUNTED = Q(status__in=[PaymentStatus.CREDITED, PaymentStatus.SUSPENSE, PaymentStatus.RETURNED])


def agent_day_report(agent: Agent, day: dt.date) -> AgentDayReport:
    tz = agent_time_zone(agent)
    start = dt.datetime.combine(clamp_day(day), dt.time.min, tzinfo=tz)
    end = start + dt.timedelta(days=1)
    ours = Payment.objects.filter(_COUNTED, channel=agent.channel).select_related("subscriber")
    report = AgentDayReport(agent=agent, day=day)
    for payment in ours.filter(received_at__gte=start, received_at__lt=end).order_by("received_at", "id"):
        report.lines.append(_line(agent, payment, tz))
    late = ours.filter(created_at__gte=start, created_at__lt=end, received_at__lt=start)
    for payment in late.order_by("received_at", "id"):
        report.late.append(_line(agent, payment, tz, late=True))
    return report


def _line(agent: Agent, payment: Payment, tz, *, late: bool = False) -> ReportLine:
    return ReportLine(
        payment=payment,
        commission=commission_of(agent, payment.amount),
        received_local=payment.received_at.astimezone(tz),
        late=late,
    )


CSV_HEADER = ["txn_id", "prv_txn", "account", "sum", "commission", "txn_date", "status", "late"]


def _cell(value) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula (CSV injection): keep such text as text.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def report_rows(report: AgentDayReport):
    """The report as CSV rows (``;``-separated as Russian spreadsheets and agents' registers are)."""
    yield CSV_HEADER
    for line in [*report.lines, *report.late]:
        p = line.payment
        yield [
            _cell(p.external_id),
            p.pk,
            _cell(p.account_ref),
            f"{p.amount:.2f}",
            f"{line.commission:.2f}",
            line.received_local.strftime("%Y-%m-%d %H:%M:%S"),
            p.status,
            "1" if line.late else "",
        ]
    yield []
    yield ["count", report.count]
    yield ["sum", f"{report.total:.2f}"]
    yield ["commission", f"{report.commission:.2f}"]
    yield ["net", f"{report.net:.2f}"]


# --- The agent's own register compared with ours --------------------------------------------------------------


@dataclass(frozen=True)
class RegisterRow:
    """One line of an agent's register: ``txn_id;sum;account;date``."""

    line: int
    txn_id: str
    amount: Decimal
    account: str
    moment: dt.datetime | None


@dataclass
class RegisterComparison:
    """Ours against the agent's, by ``txn_id``, over the days the register covers (or the day asked)."""

    days: list[dt.date]
    matched: list[tuple[RegisterRow, Payment]] = field(default_factory=list)
    # In the register, not with us: the agent took money we never received a ``pay`` for (or refused it).
    only_theirs: list[RegisterRow] = field(default_factory=list)
    # With us, not in the register: a payment the agent must include or dispute.
    only_ours: list[Payment] = field(default_factory=list)
    # The same txn_id with another sum or account.
    differ: list[tuple[RegisterRow, Payment]] = field(default_factory=list)
    unreadable: list[tuple[int, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.only_theirs or self.only_ours or self.differ or self.unreadable)


_REGISTER_DATE_FORMATS = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d")
REGISTER_MAX_LINES = 1_000_000
_DAYS_PER_QUERY = 200


def parse_register(text: str, tz) -> tuple[list[RegisterRow], list[tuple[int, str]]]:
    """The rows of a register (``;``-separated; a header line is skipped) and the lines that could not be read."""
    import re

    money = re.compile(r"\d{1,12}(?:[.,]\d{1,2})?\Z", re.ASCII)
    rows, unreadable = [], []
    for number, raw in enumerate(text.splitlines()[:REGISTER_MAX_LINES], start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        cells = [c.strip().strip('"') for c in line.split(";")]
        if number == 1 and cells[0].lower() in ("txn_id", "id", "osmp_txn_id"):
            continue
        if len(cells) < 3 or not cells[0] or len(cells[0]) > 100 or not money.match(cells[1]):
            unreadable.append((number, line[:200]))
            continue
        moment = None
        if len(cells) > 3 and cells[3]:
            for fmt in _REGISTER_DATE_FORMATS:
                try:
                    moment = dt.datetime.strptime(cells[3], fmt).replace(tzinfo=tz)
                    break
                except ValueError:
                    continue
            else:
                unreadable.append((number, line[:200]))
                continue
            if not is_sane_day(moment.date()):  # 9999-12-31 and the like: a garbled row, not a day to look at
                unreadable.append((number, line[:200]))
                continue
        amount = Decimal(cells[1].replace(",", "."))
        rows.append(RegisterRow(number, cells[0], quantize(amount), cells[2][:255], moment))
    return rows, unreadable


def compare_register(agent: Agent, text: str, day: dt.date | None = None) -> RegisterComparison:
    tz = agent_time_zone(agent)
    rows, unreadable = parse_register(text, tz)
    if day is not None:
        days = [day]
        rows = [r for r in rows if r.moment is None or r.moment.date() == day]
    else:
        days = sorted({r.moment.date() for r in rows if r.moment is not None})
    result = RegisterComparison(days=days, unreadable=unreadable)
    ours_of_days = {}
    # A few days per query: one OR of thousands of ranges is too many parameters for SQLite and slow elsewhere.
    for first in range(0, len(days), _DAYS_PER_QUERY):
        window = Q()
        for d in days[first : first + _DAYS_PER_QUERY]:
            start = dt.datetime.combine(clamp_day(d), dt.time.min, tzinfo=tz)
            window |= Q(received_at__gte=start, received_at__lt=start + dt.timedelta(days=1))
        ours_of_days.update({p.external_id: p for p in Payment.objects.filter(_COUNTED, window, channel=agent.channel)})
    # Register rows may name payments we recorded on another day (a late pay): look those up by id too.
    wanted = [r.txn_id for r in rows if r.txn_id not in ours_of_days]
    others = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        others.update(
            {p.external_id: p for p in Payment.objects.filter(_COUNTED, channel=agent.channel, external_id__in=chunk)}
        )
    seen = set()
    for row in rows:
        payment = ours_of_days.get(row.txn_id) or others.get(row.txn_id)
        seen.add(row.txn_id)
        if payment is None:
            result.only_theirs.append(row)
        elif payment.amount != row.amount or (row.account and row.account != payment.account_ref):
            result.differ.append((row, payment))
        else:
            result.matched.append((row, payment))
    result.only_ours = [p for txn_id, p in sorted(ours_of_days.items()) if txn_id not in seen]
    return result
