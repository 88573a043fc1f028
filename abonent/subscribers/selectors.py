"""Reads of the subscribers app."""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.sql.datastructures import BaseTable
from django.http import Http404
from django.utils.translation import gettext as _

from abonent.core.models import AuditEvent
from abonent.staff.permissions import scope_to_branches

from .accounts import subscriber_by_account
from .extensions import identifier_lookups, list_extension, list_extensions_for
from .models import ContactKind, ContactPoint, EquipmentAssignment, Subscriber, SubscriberStatus
from .search import ParsedQuery, Term, parse_query


@dataclass(frozen=True)
class SubscriberFilters:
    query: str = ""
    branch_id: int | None = None
    status: str = ""
    kind: str = ""
    group_id: int | None = None
    # Filters other apps add to the list (``extensions.register_list_extension``): (name, value) pairs.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def narrowed(self) -> bool:
        """Whether anything besides the query narrows the list."""
        return bool(self.branch_id or self.status or self.kind or self.group_id or self.extra)


# How far the list counts its matches: "Found: 19", or "more than 1,000" without counting a million rows on
# every keystroke. A count the search works out anyway (one page of results, the trigram step's total) is
# exact at any size. A count that would take longer than COUNT_TIMEOUT_MS says what the page proves ("more
# than 25").
COUNT_CAP = 1_000
COUNT_TIMEOUT_MS = 60


@dataclass
class SearchPage:
    """One page of results, ranked: subscribers whose name starts with the typed name words first, then the other
    matches, each group by name. ``count`` is the number of matches when ``count_exact``, else a lower bound
    ("more than": ``COUNT_CAP``, or what the page proves when counting ran out of time); ``None`` when not asked
    for (the API, the navbar)."""

    results: list[Subscriber]
    page: int
    has_next: bool
    terms: list[str]
    query_too_short: bool = False
    count: int | None = None
    count_exact: bool = True

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def visible_subscribers(user) -> QuerySet[Subscriber]:
    return scope_to_branches(Subscriber.objects.all(), user)


def _term_filter(term: Term) -> Q:
    if term.regex is None:
        return Q(search_text__contains=term.value)
    condition = Q(search_text__regex=term.regex)
    for ending in term.endings:
        condition |= Q(search_text__endswith=ending)
    return condition


# A query is bounded before it becomes SQL: each term is one more LIKE or regular expression over the search
# column, and SQLite refuses an expression tree deeper than 1,000 (a 1,500-word query was a 500, issue 11).
# An address with a full name is under ten terms ("Тверь Ленина 5 12 Иванов Иван Петрович").
MAX_QUERY_CHARS = 200  # the API's SearchParams.q has the same max_length
MAX_QUERY_TERMS = 12


def check_query(query: str, terms: list) -> None:
    """Refuse a query that cannot be a search for one subscriber: a ValidationError on ``q``."""
    if len(query) > MAX_QUERY_CHARS:
        message = _("Search for at most %(limit)d characters.") % {"limit": MAX_QUERY_CHARS}
        raise ValidationError({"q": ValidationError(message, code="query_too_long")})
    if len(terms) > MAX_QUERY_TERMS:
        message = _("Search for at most %(limit)d words.") % {"limit": MAX_QUERY_TERMS}
        raise ValidationError({"q": ValidationError(message, code="query_too_many_words")})


def _filtered(user, filters: SubscriberFilters, terms: list[Term]) -> QuerySet[Subscriber]:
    qs = visible_subscribers(user)
    for term in terms:
        qs = qs.filter(_term_filter(term))
    if filters.branch_id:
        qs = qs.filter(branch_id=filters.branch_id)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.group_id:
        qs = qs.filter(groups=filters.group_id)
    for name, value in filters.extra:
        extension = list_extension(name)
        if extension is not None and value:
            qs = extension.filter(qs, value)
    return qs


def filter_subscribers(user, filters: SubscriberFilters) -> tuple[QuerySet[Subscriber], list[Term], bool]:
    """Every visible subscriber matching the filters (unordered), the query's terms, and whether the query was
    too short to search for."""
    parsed = parse_query(filters.query)
    check_query(filters.query, parsed.terms)
    too_short = bool(filters.query.strip()) and not parsed.terms
    return _filtered(user, filters, parsed.terms), parsed.terms, too_short


def _with_extensions(qs: QuerySet, user) -> QuerySet:
    """The page's rows with what the other apps' list columns show, in the same query."""
    for extension in list_extensions_for(user):
        qs = extension.annotate(qs)
    return qs


def _primary_phones() -> Prefetch:
    return Prefetch(
        "contacts",
        queryset=ContactPoint.objects.filter(kind=ContactKind.PHONE).order_by("-is_primary", "id"),
        to_attr="phones",
    )


def _rows_by_ids(user, ids: list[int]) -> list[Subscriber]:
    position = {pk: i for i, pk in enumerate(ids)}
    return sorted(
        _with_extensions(Subscriber.objects.filter(pk__in=ids), user)
        .select_related("branch")
        .prefetch_related(_primary_phones(), "addresses")
        .defer("search_text"),
        key=lambda s: position[s.pk],
    )


def search_subscribers(
    user, filters: SubscriberFilters, *, page: int = 1, page_size: int | None = None, count: bool = False
) -> SearchPage:
    """The subscriber list and search: every visible subscriber matching all terms, name matches first.

    A query starting with name words ("Иванов Иван", "Иванов И.П.") lists first the subscribers whose name
    starts with them (``NamePrefix``), by name; then every other match, by name. Pages are offsets into that
    one order: the first group is read from its index at the page's offset; once it runs out, the page goes
    on with the second group at the offset less the first group's size, which is then known (the first
    group's last page, or a count of it bounded by the offset). No subscriber is in both groups (the second
    excludes the first's pattern), so no page repeats or skips one. ``count=True`` also says how many match
    (``SearchPage.count``).
    """
    page_size = page_size or settings.ABONENT_SEARCH_PAGE_SIZE
    page = max(1, page)
    parsed = parse_query(filters.query)
    check_query(filters.query, parsed.terms)
    terms = parsed.terms
    if filters.query.strip() and not terms:
        holders = _holders_page(user, filters, page, count)
        return holders or SearchPage(results=[], page=1, has_next=False, terms=[], query_too_short=True)
    qs = _filtered(user, filters, terms)
    offset = (page - 1) * page_size
    want = page_size + 1
    total: int | None = None
    if parsed.name is not None:
        ids, total = _ranked_ids(user, filters, parsed, qs, offset, want)
        rows = _rows_by_ids(user, ids)
    elif connection.vendor == "postgresql" and (terms or filters.narrowed):
        ids, total = _matching_ids_pg(qs, filters, terms, offset, want)
        rows = _rows_by_ids(user, ids)
    else:
        rows = list(
            _with_extensions(qs, user)
            .select_related("branch")
            .prefetch_related(_primary_phones(), "addresses")
            .order_by("display_name", "id")
            .defer("search_text")[offset : offset + want]
        )
    if not rows and offset == 0 and (holders := _holders_page(user, filters, page, count)):
        return holders
    result = SearchPage(
        results=rows[:page_size], page=page, has_next=len(rows) > page_size, terms=[t.value for t in terms]
    )
    if count:
        if not result.has_next and (rows or page == 1):
            total = offset + len(rows)
        if total is None:
            total = _capped_count(qs, terms)
        if total is None:
            result.count, result.count_exact = offset + page_size, False
        else:
            result.count, result.count_exact = min(total, COUNT_CAP), total <= COUNT_CAP
    return result


MAX_IDENTIFIER_HOLDERS = 100  # one page however many share an identifier (a few do: a family's login, an IP)


def _holders_page(user, filters: SubscriberFilters, page: int, count: bool) -> SearchPage | None:
    """When the text finds nobody, the subscribers whose identifier the query is, though the search text does
    not hold it (a login two subscribers share, an IP address): listed rather than "Nothing found"."""
    if page != 1:
        return None
    holders = identifier_holders(user, filters.query, filters).order_by("display_name", "id")
    ids = list(holders.values_list("id", flat=True)[:MAX_IDENTIFIER_HOLDERS])
    if not ids:
        return None
    result = SearchPage(results=_rows_by_ids(user, ids), page=1, has_next=False, terms=[])
    if count:
        result.count = len(ids)
    return result


def _name_matches(user, filters: SubscriberFilters, parsed: ParsedQuery) -> QuerySet[Subscriber]:
    """The first group: matches whose name starts with the query's name words. The terms those words are need
    no test of the search text (a name that starts with "иванов" contains it), so with the list's own filters
    alone the index range is read without the table."""
    name = parsed.name
    low, high = name.key_range
    rest = [t for t in parsed.terms if t.value not in name.implied]
    return _filtered(user, filters, rest).filter(name_key__gte=low, name_key__lt=high, display_name__regex=name.pattern)


def _ranked_ids(
    user, filters: SubscriberFilters, parsed: ParsedQuery, qs: QuerySet, offset: int, want: int
) -> tuple[list[int], int | None]:
    """Ids of ranked matches ``offset … offset + want`` and, when that came for free, how many match."""
    first = _name_matches(user, filters, parsed)
    ordered = first.order_by("name_key", "id").values_list("id", flat=True)[offset : offset + want]
    with _planner("seqscan", "bitmapscan") if connection.vendor == "postgresql" else nullcontext():
        ids = list(ordered)
        if len(ids) == want:
            return ids, None
        # The first group ends on this page, or before it: its size is known, or counted up to the offset.
        first_total = offset + len(ids) if ids or offset == 0 else first[:offset].count()
    rest = qs.exclude(display_name__regex=parsed.name.pattern)
    rest_offset = max(0, offset - first_total)
    if connection.vendor == "postgresql":
        more, rest_total = _matching_ids_pg(rest, filters, parsed.terms, rest_offset, want - len(ids))
    else:
        ordered_rest = rest.order_by("display_name", "id").values_list("id", flat=True)
        more, rest_total = list(ordered_rest[rest_offset : rest_offset + want - len(ids)]), None
    return ids + more, None if rest_total is None else first_total + rest_total


def _capped_count(qs: QuerySet, terms: list[Term]) -> int | None:
    """How many rows match, counted up to ``COUNT_CAP + 1``; ``None`` when that takes more than
    ``COUNT_TIMEOUT_MS`` on PostgreSQL.

    A query with a plain term is counted through the trigram index (a bitmap of the candidates, then the heap
    until the cap): the planner would otherwise scan the table in order for a term it expects often, and a
    rare one would take the whole scan. What the index cannot narrow is the budget's case: "Иванов И.П." has
    55,000 candidates at 1,000,000 subscribers (everyone with "иванов" in the text) and a few hundred matches,
    half a second of heap to count them all."""
    capped = qs.order_by().values("id")[: COUNT_CAP + 1]
    if connection.vendor != "postgresql":
        return capped.count()
    steer = ("seqscan", "indexscan", "indexonlyscan") if any(t.indexed for t in terms) else ()
    try:
        with _planner(*steer, timeout_ms=COUNT_TIMEOUT_MS):
            return capped.count()
    except OperationalError:  # the statement timeout: show what the page proves
        return None


# --- PostgreSQL: which rows make the page -------------------------------------------------------------
#
# Two plans answer "the first matches by name", and each is slow exactly where the other is fast:
#
# * walking the list order (``display_name, id``) and testing each row stops after a page of matches:
#   a few milliseconds for a frequent term ("Иванов" is in 5% of rows through patronymics, "Ленина" in
#   2.5%), but it walks most of the table for a rare term or one whose rows all sort late (every
#   "Смирнова" sits under "С", 800,000 rows in);
# * the trigram index finds every match and a sort picks the page: 5–25 ms for up to several thousand
#   matches, ~230 ms for 50,000.
#
# PostgreSQL's own choice goes by row estimates, which know neither where the matches sort nor how terms
# correlate: at 1,000,000 subscribers EXPLAIN ANALYZE showed "Богданова" as an ordered index scan
# filtering 117,000 rows (742 ms; ~30 ms below), and "Иванов" costs 228 ms as a trigram sort and ~9 ms
# as a walk. So the plan is chosen here, from how many rows match in a small random sample of the table
# (refreshed every few minutes): a few thousand or fewer go to the trigram index first, more go to a
# walk first. Each step is bounded and says when it cannot prove the page (a walk that found too few
# matches in its stretch, a trigram count over its cap), and the next one takes over; the last one,
# a full trigram sort, always answers. Walks are index-only through ``subscribers_list_order_covering``
# (~1 µs a row instead of a random heap page), and the planner is steered per step (``_planner``).

FIRST_WALK_ROWS = 10_000
LONG_WALK_ROWS = 100_000
TRIGRAM_CAP = 25_000
WALK_FIRST_ABOVE = 10_000  # expected matches
SAMPLE_ROWS = 2_000
SAMPLE_SECONDS = 600
_sample: tuple[float, str | None, float, list[tuple[str, int, str, str]]] = (0.0, None, 0.0, [])
COVERED_TEXT_BYTES = 1500  # the predicate of the covering index (migration 0003)
_WALK_COLUMNS = "id, display_name, search_text, branch_id, status, kind"


class _ListOrderStretch(BaseTable):
    """``FROM subscribers_subscriber`` cut down to the first ``rows`` subscribers in list order, plus the
    few whose search text is too long for the covering index (``in_stretch`` false), so that filters,
    joins and ordering compiled by Django run on the stretch alone."""

    def __init__(self, table_name, alias, rows):
        super().__init__(table_name, alias)
        self.rows = rows

    def as_sql(self, compiler, connection):
        table = compiler.quote_name_unless_alias(self.table_name)
        alias = connection.ops.quote_name(self.table_alias)
        sql = (
            f"(SELECT {_WALK_COLUMNS}, true AS in_stretch FROM (SELECT {_WALK_COLUMNS} FROM {table} "
            f"WHERE octet_length(search_text) <= {COVERED_TEXT_BYTES} ORDER BY display_name, id LIMIT %s) AS first "
            f"UNION ALL SELECT {_WALK_COLUMNS}, false FROM {table} "
            f"WHERE octet_length(search_text) > {COVERED_TEXT_BYTES}) {alias}"
        )
        return sql, [self.rows]

    def relabeled_clone(self, change_map):
        return self.__class__(self.table_name, change_map.get(self.table_alias, self.table_alias), self.rows)

    @property
    def identity(self):
        return self.__class__, self.table_name, self.table_alias, self.rows


@contextmanager
def _planner(*disabled: str, timeout_ms: int | None = None):
    """Switch planner methods off (``enable_<name>``) for the queries inside, and give each at most
    ``timeout_ms`` when set (a query over it raises ``OperationalError``).

    ``SET LOCAL`` in a transaction of its own: nothing outlives it, even behind a transaction-pooling
    proxy; inside a caller's transaction the defaults are put back on the way out (or by the rollback of
    its savepoint, when a query ran out of time). JIT goes off too: a path the planner cannot avoid (a
    small table's scan) keeps its "disabled" cost of 10^10, which would otherwise buy a JIT compilation
    slower than the query.
    """
    settings_ = {f"enable_{name}": "off" for name in disabled} | {"jit": "off"}
    if timeout_ms is not None:
        settings_["statement_timeout"] = str(int(timeout_ms))
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("; ".join(f"SET LOCAL {name} = {value}" for name, value in settings_.items()))
        yield
        if nested:
            cursor.execute("; ".join(f"SET LOCAL {name} TO DEFAULT" for name in settings_))


def _walk(qs: QuerySet, rows: int, offset: int, count: int) -> list[int] | None:
    """Ids of matches ``offset … offset + count`` by walking the first ``rows`` of the list order, or
    ``None`` when that stretch does not prove them (too few matches in it)."""
    q = qs.order_by("display_name", "id").annotate(in_stretch=RawSQL("in_stretch", ())).values_list("id", "in_stretch")
    q = q[: offset + count]
    alias = q.query.get_initial_alias()
    q.query.alias_map[alias] = _ListOrderStretch(q.query.alias_map[alias].table_name, alias, rows)
    with _planner("seqscan", "bitmapscan"):
        found = list(q)
    # Complete if the stretch held enough matches and the last one needed came from the ordered part:
    # every row past the stretch sorts after it.
    if len(found) < offset + count or not found[-1][1]:
        return None
    return [pk for pk, _ in found[offset:]]


def _trigram_sorted(qs: QuerySet, offset: int, count: int, cap: int | None) -> tuple[list[int], int | None] | None:
    """Ids of matches ``offset … offset + count`` found through the trigram index and sorted, with how many
    match when ``cap`` is given; ``None`` when there are more than ``cap`` (sorting them all would cost more
    than walking)."""
    with _planner("seqscan", "indexscan", "indexonlyscan"):
        if cap is None:
            return list(qs.order_by("display_name", "id").values_list("id", flat=True)[offset : offset + count]), None
        matches, params = qs.order_by().values_list("id", "display_name")[: cap + 1].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH matches AS MATERIALIZED ({matches}) SELECT (SELECT count(*) FROM matches), "
                "array(SELECT id FROM matches ORDER BY display_name, id LIMIT %s OFFSET %s)",
                [*params, count, offset],
            )
            total, ids = cursor.fetchone()
    return None if total > cap else (ids, total)


def _table_sample() -> tuple[float, list[tuple[str, int, str, str]]]:
    """The table's row count and about ``SAMPLE_ROWS`` rows (search text, branch, status, kind) from random
    pages of it, taken again every ``SAMPLE_SECONDS`` per process and database (milliseconds each time)."""
    global _sample
    key = connection.settings_dict["NAME"]
    taken, sampled_key, rows, sample = _sample
    if sampled_key != key or time.monotonic() - taken > SAMPLE_SECONDS:
        table = Subscriber._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            rows = float(cursor.fetchone()[0])
            percent = min(100.0, 100.0 * SAMPLE_ROWS / rows) if rows > 0 else 1.0
            cursor.execute(
                f"SELECT search_text, branch_id, status, kind FROM {table} TABLESAMPLE SYSTEM (%s)", [percent]
            )
            sample = cursor.fetchall()
        if rows <= 0:  # never analysed: scale the sample up instead
            rows = len(sample) * 100.0 / percent
        _sample = (time.monotonic(), key, rows, sample)
    return rows, sample


def _expected_matches(terms: list[Term], filters: SubscriberFilters) -> float | None:
    """Roughly how many subscribers match (group membership left out), from the sample."""
    rows, sample = _table_sample()
    if not sample:
        return None
    matching = [
        row
        for row in sample
        if (not filters.branch_id or row[1] == filters.branch_id)
        and (not filters.status or row[2] == filters.status)
        and (not filters.kind or row[3] == filters.kind)
    ]
    for term in sorted(terms, key=lambda t: not t.indexed):  # plain substrings first, they are quickest
        matching = [row for row in matching if term.matches(row[0])]
    return rows * len(matching) / len(sample)


def _matching_ids_pg(
    qs: QuerySet, filters: SubscriberFilters, terms: list[Term], offset: int, count: int
) -> tuple[list[int], int | None]:
    """Ids of matches ``offset … offset + count`` in list order, and how many match when the trigram step
    counted them on the way."""
    # A sample of the table says roughly how many rows match: a few thousand are cheapest to sort through
    # the trigram index (and may all sort late, where no walk reaches); tens of thousands are found
    # soonest by walking. Without terms, filters alone ("VIP" in a branch) are walked, unless the sample
    # has none of them ("closed"): then the planner goes through the filters' own indexes.
    expected = _expected_matches(terms, filters)
    if not terms:
        ids = _walk(qs, LONG_WALK_ROWS, offset, count) if expected else None
        if ids is None:
            ids = list(qs.order_by("display_name", "id").values_list("id", flat=True)[offset : offset + count])
        return ids, None
    walk_first = expected is not None and expected > WALK_FIRST_ABOVE
    ids = _walk(qs, FIRST_WALK_ROWS, offset, count) if walk_first else None
    if ids is not None:
        return ids, None
    sorted_ = _trigram_sorted(qs, offset, count, cap=TRIGRAM_CAP)
    if sorted_ is not None:
        return sorted_
    # More than TRIGRAM_CAP match: a lower bound past the list's COUNT_CAP.
    over_cap = TRIGRAM_CAP + 1
    ids = None if walk_first else _walk(qs, FIRST_WALK_ROWS, offset, count)
    if ids is None:
        ids = _walk(qs, LONG_WALK_ROWS, offset, count)
    if ids is None:
        ids, _total = _trigram_sorted(qs, offset, count, cap=None)
    return ids, over_cap


def identifier_holders(user, query: str, filters: SubscriberFilters | None = None) -> QuerySet[Subscriber]:
    """The subscribers the user may see, and the list's other filters let through, whose account number,
    contract number, phone, login, IP address or MAC (what the apps register,
    ``extensions.register_identifier_lookup``) is exactly the query. Another branch's subscriber is never among
    them, and never counts: the user learns nothing about it."""
    query = (query or "").strip()
    if not query or len(query) > MAX_QUERY_CHARS:
        return Subscriber.objects.none()
    ids: set[int] = set()
    for lookup in identifier_lookups():
        ids.update(lookup.find(query))
    if not ids:
        return Subscriber.objects.none()
    narrowing = replace(filters, query="") if filters is not None else SubscriberFilters()
    return _filtered(user, narrowing, []).filter(pk__in=ids)


def find_by_identifier(user, query: str, *, filters: SubscriberFilters | None = None) -> Subscriber | None:
    """The one subscriber of ``identifier_holders``; ``None`` when there is none or more than one. An identifier
    a closed account held and a live one holds now (a phone number given to someone else) names the live one;
    a closed account's own identifier still opens it."""
    holders = identifier_holders(user, query, filters).select_related("branch")
    found = list(holders[:2])
    if len(found) > 1:
        found = list(holders.exclude(status=SubscriberStatus.CLOSED)[:2])
    return found[0] if len(found) == 1 else None


def get_subscriber(user, pk: int) -> Subscriber:
    """A subscriber the user may see, or 404 (not 403: do not confirm that an account exists elsewhere)."""
    subscriber = visible_subscribers(user).select_related("branch").filter(pk=pk).first()
    if subscriber is None:
        raise Http404
    return subscriber


def get_subscriber_by_account(user, account_number: str) -> Subscriber:
    """By our account number or the old system's (``accounts.subscriber_by_account``), among those the user sees."""
    subscriber = subscriber_by_account(account_number, queryset=visible_subscribers(user).select_related("branch"))
    if subscriber is None:
        raise Http404
    return subscriber


def current_equipment(subscriber: Subscriber) -> list[EquipmentAssignment]:
    return list(subscriber.equipment_assignments.filter(returned_at__isnull=True).select_related("equipment"))


def equipment_history(subscriber: Subscriber) -> list[EquipmentAssignment]:
    return list(subscriber.equipment_assignments.select_related("equipment").order_by("-assigned_at"))


def subscriber_history(subscriber: Subscriber, *, limit: int = 50) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(subscriber_id=subscriber.pk).select_related("actor")[:limit])
