"""Receivables ageing: the subscribers whose balance is below zero, by how long they have been in debt.

"In debt since" is the day the balance last went below zero. Two sources give it, and the cheaper one is used
wherever it measures exactly that:

* dunning's ``AccessState.restricted_since``: the start of the current debt episode, kept by the dunning
  evaluation while balance + credit limit stays below zero. For a subscriber who never had a credit limit that is
  the balance itself, and the field costs one join (most debtors, and the reason this page is a join, not a walk);
* the ledger otherwise (a credit limit now or in the past, read from the audit's ``billing.credit_limit_set``, so
  the episode need not start with the debt; exempt from blocking, or in debt since a block, a freeze or a
  termination, so dunning records no episode; not evaluated yet): the
  subscriber's postings of the last ``WINDOW_DAYS`` days summed per day and walked back from today's balance;
  the debt began on the last day the balance before it was not negative. Nothing found in the window: in debt
  since before it (the "over 90 days" bucket). One correlated subquery per such subscriber, through the postings'
  (account, transaction) index.

Both are read in one statement per page; the buckets' and branches' totals add up one pass over the debtors.
Branch limits apply to all of it (``scope_to_branches``).
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, DateField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncDate
from django.utils.translation import gettext_lazy as _

from abonent.billing.models import AccountKind, LedgerAccount
from abonent.core import clock
from abonent.core.listing import Sorting
from abonent.core.models import AuditEvent, Branch
from abonent.core.money import ZERO, quantize
from abonent.staff.permissions import allowed_branch_ids, scope_to_branches

# The ledger is walked back this many days at most: enough to tell the buckets apart.
WINDOW_DAYS = 90


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str
    # Days in debt, inclusive; ``None`` above: no upper end.
    low: int
    high: int | None


BUCKETS = (
    Bucket("0-30", _("0–30 days"), 0, 30),
    Bucket("31-60", _("31–60 days"), 31, 60),
    Bucket("61-90", _("61–90 days"), 61, 90),
    Bucket("90+", _("over 90 days"), 91, None),
)
BUCKET_KEYS = {b.key: b for b in BUCKETS}

# The audit action of ``billing.do_set_credit_limit``: the account's credit-limit history.
CREDIT_LIMIT_SET = "billing.credit_limit_set"

# The drill-down's sorts: the biggest debt first (balance ascending), the oldest debt first, by account.
SORTING = Sorting(
    {"debt": ("balance", "id"), "since": ("debt_since", "id"), "account": ("subscriber__account_number", "id")},
    default="debt",
)

# The last day in the window the balance before it was not negative (module docstring), or NULL. Correlated to the
# outer ledger account; SQLite sums in floats, hence the half-kopeck tolerance.
_WALK = """(SELECT MAX(w.day) FROM (
    SELECT m.day, SUM(m.delta) OVER (ORDER BY m.day DESC ROWS UNBOUNDED PRECEDING) AS since_then
    FROM (SELECT t.effective_date AS day, SUM(p.amount) AS delta
          FROM billing_posting p JOIN billing_ledgertransaction t ON t.id = p.transaction_id
          WHERE p.account_id = billing_ledgeraccount.id AND t.effective_date >= %s
          GROUP BY t.effective_date) m
) w WHERE billing_ledgeraccount.balance - w.since_then > -0.005)"""


@contextmanager
def without_jit():
    """PostgreSQL's JIT off for the queries inside (``SET LOCAL``, in a transaction of their own). The walk's subquery
    is costed per debtor, so the planner's estimate passes the JIT thresholds and compiling took 1.4 s of a 2.4 s
    summary at 70,000 debtors (EXPLAIN ANALYZE); the queries themselves run in milliseconds a thousand rows."""
    if connection.vendor != "postgresql":
        yield
        return
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield
        if nested:
            cursor.execute("SET LOCAL jit TO DEFAULT")


def window_start(today: dt.date) -> dt.date:
    return today - dt.timedelta(days=WINDOW_DAYS)


def before_window(today: dt.date) -> dt.date:
    """What "in debt since" says for a debt older than the window: the day before it (91 days: over 90)."""
    return window_start(today) - dt.timedelta(days=1)


def debtors(user, *, today: dt.date | None = None) -> QuerySet[LedgerAccount]:
    """The personal accounts below zero of the subscribers ``user`` sees, each with ``debt_since`` (a date; the day
    before the window for an older debt) and ``access_state`` (dunning's, ``None`` before its first evaluation)."""
    today = today or clock.today()
    restricted_since = "subscriber__access_state__restricted_since"
    # A credit limit ever set (or removed) makes dunning's episode start when balance + limit went below zero, not
    # the balance: the ledger decides then. One probe of the audit's subscriber index per debtor.
    limit_history = AuditEvent.objects.filter(subscriber_id=OuterRef("subscriber_id"), action=CREDIT_LIMIT_SET)
    since = Case(
        When(
            Q(credit_limit=0) & Q(**{f"{restricted_since}__isnull": False}) & ~Exists(limit_history),
            then=TruncDate(restricted_since),
        ),
        # A constant statement; the one value is a parameter.
        default=Coalesce(
            RawSQL(_WALK, [window_start(today)], output_field=DateField()),  # noqa: S611
            Value(before_window(today)),
        ),
        output_field=DateField(),
    )
    qs = LedgerAccount.objects.filter(kind=AccountKind.SUBSCRIBER, balance__lt=0)
    return scope_to_branches(qs, user, "subscriber__branch").annotate(
        debt_since=since, access_state=F("subscriber__access_state__state")
    )


def in_bucket(qs: QuerySet[LedgerAccount], bucket: Bucket, *, today: dt.date | None = None) -> QuerySet:
    today = today or clock.today()
    qs = qs.filter(debt_since__lte=today - dt.timedelta(days=bucket.low))
    if bucket.high is not None:
        qs = qs.filter(debt_since__gte=today - dt.timedelta(days=bucket.high))
    return qs


def bucket_of(debt_since: dt.date, today: dt.date) -> Bucket:
    days = max((today - debt_since).days, 0)
    return next(b for b in BUCKETS if b.high is None or days <= b.high)


def filtered(
    qs: QuerySet[LedgerAccount], *, bucket: str = "", branch_id: int | None = None, query: str = "", today=None
) -> QuerySet[LedgerAccount]:
    if bucket in BUCKET_KEYS:
        qs = in_bucket(qs, BUCKET_KEYS[bucket], today=today)
    if branch_id:
        qs = qs.filter(subscriber__branch_id=branch_id)
    text = query.strip()
    if text:
        qs = qs.filter(
            Q(subscriber__account_number=text)
            | Q(subscriber__legacy_account=text)
            | Q(subscriber__display_name__icontains=text)
        )
    return qs


@dataclass
class Cell:
    count: int = 0
    debt: Decimal = ZERO

    def add(self, balance: Decimal) -> None:
        self.count += 1
        self.debt += -balance


@dataclass
class BranchRow:
    branch: Branch
    cells: list[Cell]
    total: Cell = field(default_factory=Cell)


@dataclass
class Ageing:
    """The totals: per bucket, per branch and bucket, and in all (debts as positive amounts)."""

    today: dt.date
    buckets: list[tuple[Bucket, Cell]]
    branches: list[BranchRow]
    total: Cell


def ageing(user, *, today: dt.date | None = None, accounts: QuerySet[LedgerAccount] | None = None) -> Ageing:
    """Every visible debtor (or each of ``accounts``, a filtered ``debtors`` of ``user``) counted once into its bucket
    and its branch's (one query)."""
    today = today or clock.today()
    by_bucket = {b.key: Cell() for b in BUCKETS}
    by_branch: dict[int, dict[str, Cell]] = {}
    total = Cell()
    accounts = debtors(user, today=today) if accounts is None else accounts
    rows = accounts.values_list("subscriber__branch_id", "balance", "debt_since")
    with without_jit():
        rows = list(rows)
    for branch_id, balance, since in rows:
        balance = quantize(balance)  # SQLite hands decimals back as floats
        key = bucket_of(since, today).key
        by_bucket[key].add(balance)
        by_branch.setdefault(branch_id, {b.key: Cell() for b in BUCKETS})[key].add(balance)
        total.add(balance)
    ids = allowed_branch_ids(user)
    branches = Branch.objects.filter(pk__in=by_branch).order_by("name")
    if ids is not None:
        branches = branches.filter(pk__in=ids)
    branch_rows = []
    for branch in branches:
        cells = [by_branch[branch.pk][b.key] for b in BUCKETS]
        row = BranchRow(branch, cells)
        for cell in cells:
            row.total.count += cell.count
            row.total.debt += cell.debt
        branch_rows.append(row)
    return Ageing(today, [(b, by_bucket[b.key]) for b in BUCKETS], branch_rows, total)
