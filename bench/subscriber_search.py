"""Staff subscriber search over a seeded database: p95 of the first page for a realistic mix of operator queries.

    python bench/subscriber_search.py [--n 1000000] [--queries 1000] [--warmup 200]

Every query goes through the real selector (``search_subscribers``) as an operator without a branch limit,
and every typed value comes from a seeded row: account numbers, phones in the forms operators type them,
the last 7 digits of a phone, surnames, surname + first name, street + house, MACs, emails, the plain list
of a branch, and a surname with a status filter. Target (DESIGN.md §5): p95 ≤ 100 ms at 1,000,000.
Progress goes to stderr; the last line on stdout is the JSON result.
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, percentile, prepare

NAME = "subscriber_search"

# How often operators type each kind of query, out of 100.
MIX = {
    "account": 14,
    "phone_plus": 10,
    "phone_8": 10,
    "phone_last7": 10,
    "surname": 14,
    "surname_name": 10,
    "street_house": 8,
    "mac": 5,
    "email": 5,
    "list_branch": 8,
    "surname_status": 6,
}
# Kinds whose first page must contain the subscriber the value was taken from (a unique value, or so
# nearly unique that a miss means search is broken, unless the page is full and there is a next one).
MUST_FIND = {"account", "phone_plus", "phone_8", "phone_last7", "mac", "email"}
STREET_WORDS_DROPPED = {"ул.", "пр-т"}


def _phone_plus(e164: str) -> str:
    d = e164[2:]
    return f"+7 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}"


def _mac(raw: str, rng: random.Random) -> str:
    return raw.upper() if rng.random() < 0.5 else raw.lower()


class Pool:
    """Real seeded subscribers with what operators would type about them."""

    def __init__(self, rng: random.Random, size: int):
        from abonent.subscribers.models import ContactKind, Subscriber

        bounds = Subscriber.objects.order_by("pk").values_list("pk", flat=True)
        low, high = bounds.first(), bounds.last()
        ids = rng.sample(range(low, high + 1), min(size, high - low + 1))
        rows = (
            Subscriber.objects.filter(pk__in=ids)
            .prefetch_related("contacts", "addresses", "equipment_assignments__equipment")
            .order_by("pk")
        )
        self.subscribers = []
        self.people, self.phones, self.emails, self.macs, self.addresses = [], [], [], [], []
        for sub in rows:
            self.subscribers.append(sub)
            if sub.last_name:
                self.people.append(sub)
            for contact in sub.contacts.all():
                if contact.kind == ContactKind.PHONE:
                    self.phones.append((sub, contact.value))
                else:
                    self.emails.append((sub, contact.value))
            for assignment in sub.equipment_assignments.all():
                if assignment.returned_at is None and assignment.equipment.mac_address:
                    self.macs.append((sub, assignment.equipment.mac_address))
            for address in sub.addresses.all():
                self.addresses.append((sub, address))
        self.branch_ids = sorted({s.branch_id for s in self.subscribers})


def make_query(kind: str, pool: Pool, rng: random.Random):
    """(filters, expected subscriber or None) for one query of the given kind."""
    from abonent.subscribers.selectors import SubscriberFilters

    if kind == "account":
        sub = rng.choice(pool.subscribers)
        return SubscriberFilters(query=sub.account_number), sub
    if kind in ("phone_plus", "phone_8", "phone_last7"):
        sub, phone = rng.choice(pool.phones)
        typed = {"phone_plus": _phone_plus(phone), "phone_8": "8" + phone[2:], "phone_last7": phone[-7:]}[kind]
        return SubscriberFilters(query=typed), sub
    if kind == "surname":
        return SubscriberFilters(query=rng.choice(pool.people).last_name), None
    if kind == "surname_name":
        sub = rng.choice(pool.people)
        return SubscriberFilters(query=f"{sub.last_name} {sub.first_name}"), sub
    if kind == "street_house":
        sub, address = rng.choice(pool.addresses)
        street = " ".join(w for w in address.street.split() if w not in STREET_WORDS_DROPPED)
        return SubscriberFilters(query=f"{street} {address.house}"), None
    if kind == "mac":
        sub, mac = rng.choice(pool.macs)
        return SubscriberFilters(query=_mac(mac, rng)), sub
    if kind == "email":
        sub, email = rng.choice(pool.emails)
        return SubscriberFilters(query=email), sub
    if kind == "list_branch":
        return SubscriberFilters(branch_id=rng.choice(pool.branch_ids)), None
    if kind == "surname_status":
        sub = rng.choice(pool.people)
        return SubscriberFilters(query=sub.last_name, status="active"), None
    raise ValueError(kind)


def plan(total: int, rng: random.Random) -> list[str]:
    weight_sum = sum(MIX.values())
    kinds = [kind for kind, weight in MIX.items() for _ in range(max(1, round(total * weight / weight_sum)))]
    rng.shuffle(kinds)
    return kinds


def main() -> None:
    parser = base_parser(NAME, default_n=1_000_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=1000, help="timed queries (default 1000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed queries first (default 200)")
    args = parser.parse_args()
    setup = prepare(
        NAME, args.n, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=("staff", "subscribers")
    )

    from abonent.staff.models import StaffUser
    from abonent.staff.permissions import Role
    from abonent.subscribers.selectors import search_subscribers

    user, _ = StaffUser.objects.get_or_create(
        username="bench-operator", defaults={"role": Role.OPERATOR, "full_name": "Benchmark operator"}
    )
    user = StaffUser.objects.get(pk=user.pk)  # as a request would load it: no cached branch scope
    rng = random.Random(args.seed + 1)
    log("sampling seeded rows")
    pool = Pool(rng, 4000)

    log(f"warm-up: {args.warmup} queries")
    for kind in plan(args.warmup, rng):
        filters, _ = make_query(kind, pool, rng)
        search_subscribers(user, filters)

    kinds = plan(args.queries, rng)
    log(f"timing {len(kinds)} queries")
    timings: dict[str, list[float]] = defaultdict(list)
    slowest: list[tuple[float, str, str]] = []
    misses: dict[str, int] = defaultdict(int)
    empty: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    for done, kind in enumerate(kinds, 1):
        filters, expected = make_query(kind, pool, rng)
        t0 = time.perf_counter()
        page = search_subscribers(user, filters)
        elapsed = (time.perf_counter() - t0) * 1000
        timings[kind].append(elapsed)
        slowest.append((elapsed, kind, f"{filters.query!r} {filters.branch_id or ''}{filters.status}"))
        if not page.results:
            empty[kind] += 1
        found = {s.pk for s in page.results}
        if kind in MUST_FIND and expected is not None and not page.has_next and expected.pk not in found:
            misses[kind] += 1
        if done % 200 == 0:
            log(f"  {done}/{len(kinds)}")
    seconds = time.perf_counter() - started

    everything = [t for values in timings.values() for t in values]
    for kind in MIX:
        values = timings[kind]
        log(
            f"  {kind:<15} n={len(values):>4}  p50={percentile(values, 50):7.1f} ms  "
            f"p95={percentile(values, 95):7.1f} ms  max={max(values):7.1f} ms  empty={empty[kind]}"
        )
    for elapsed, kind, typed in sorted(slowest, reverse=True)[:8]:
        log(f"  slow: {elapsed:7.1f} ms  {kind:<15} {typed}")
    if misses:
        log(f"MISSES (expected subscriber not on the first page): {dict(misses)}")

    def r(value):
        return None if value is None else round(value, 1)

    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "n": args.n,
            "queries": len(everything),
            "seconds": round(seconds, 2),
            "rate": round(len(everything) / seconds, 1),
            "p50_ms": r(percentile(everything, 50)),
            "p95_ms": r(percentile(everything, 95)),
            "p99_ms": r(percentile(everything, 99)),
            "misses": sum(misses.values()),
            "seed_seconds": setup.seed_seconds,
            "per_kind_p95_ms": {kind: r(percentile(timings[kind], 95)) for kind in MIX},
        }
    )


if __name__ == "__main__":
    main()
