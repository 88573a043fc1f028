"""Staff console pages over a seeded database: p95 server time of the list, search, the card and the dashboard.

    python bench/console_pages.py [--subscribers 1000000] [--requests 100] [--warmup 10]

The database is seeded once by ``abonent seed`` (every app's steps). On top of it, once, through the real
actions: one subscriber with three years of history (36 monthly payments, "Интернет-100" from 36 months back,
so 37 monthly charges, a session a day on a NAS, notes and profile changes in the audit log). Nothing of that
is timed.

Timed: Django's test ``Client`` in this process, signed in as an operator without a branch limit, each request
the whole server side of a page (middleware, view, queries, templates; ``ABONENT_DEBUG=0`` as in production),
for: the list page; the search page for typical queries taken from seeded rows (a surname, surname and given
name, surname and initials, street with house and flat, a phone in the "+7 916 123-45-67" form and an account
number, both of which open the card: the redirect is what is timed); the card of the subscriber with the long
history; and the dashboard (``dashboard:home``, reported as absent where this branch has none). Every answer is
checked (status, the subscriber searched for on the page, the card a phone or account opens). Target
(DESIGN.md §5): p95 ≤ 200 ms for each page at 1,000,000 subscribers. Progress goes to stderr; the last line on
stdout is the JSON result.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, percentile, prepare
from subscriber_search import STREET_WORDS_DROPPED, Pool, _phone_plus

# As production serves pages: templates parsed once (the cached loader), no debug toolbar of any kind.
os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "console_pages"
TARGET_P95_MS = 200
HISTORY_CONTRACT = "BENCH-HISTORY-1"
HISTORY_MONTHS = 36
HISTORY_NOTES = 60
HISTORY_EDITS = 12


def _months_back(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def history_subscriber():
    """The subscriber with three years of history, made once per database through the actions."""
    from django.db import transaction

    from abonent.billing.actions import do_activate_subscription, do_post_payment
    from abonent.catalog.models import Plan
    from abonent.core import clock
    from abonent.core.models import Branch
    from abonent.network.actions import do_create_nas
    from abonent.network.models import Nas, Session
    from abonent.staff.actions import do_create_staff_user
    from abonent.staff.models import StaffUser
    from abonent.staff.permissions import Role
    from abonent.subscribers import actions
    from abonent.subscribers.models import Contract

    existing = Contract.objects.filter(number=HISTORY_CONTRACT).select_related("subscriber").first()
    if existing is not None:
        return existing.subscriber
    log("making the subscriber with three years of history")
    admin = StaffUser.objects.filter(username="bench-admin").first() or do_create_staff_user(
        username="bench-admin", password="bench-admin-password!", role=Role.ADMIN, full_name="Benchmark admin"
    )
    branch_id = Branch.objects.order_by("pk").values_list("pk", flat=True).first()
    today = clock.today()
    months = [_months_back(today, k) for k in range(HISTORY_MONTHS, 0, -1)]
    with transaction.atomic():
        subscriber = actions.do_create_subscriber(
            actions.SubscriberData(
                branch_id=branch_id,
                last_name="Долгожителев",
                first_name="Иван",
                middle_name="Петрович",
                contract_number=HISTORY_CONTRACT,
                contract_signed_on=months[0],
                contacts=[actions.ContactData(kind="phone", value="+79990003636", is_primary=True)],
                addresses=[actions.AddressData(city="Тверь", street="ул. Ленина", house="36", apartment="36")],
            ),
            acting_user=admin,
        )
        for number, month in enumerate(months, start=1):
            do_post_payment(
                subscriber,
                amount=Decimal("700.00"),
                channel="cash",
                external_id=f"bench-history-{number}",
                paid_on=month,
                acting_user=admin,
                memo="Оплата в кассе",
            )
        plan = Plan.objects.get(code="internet-100")
        do_activate_subscription(subscriber, plan=plan, acting_user=admin, starts_on=months[0], reason="Подключение")
        for index in range(HISTORY_EDITS):
            actions.do_update_subscriber(
                subscriber,
                changes={"middle_name": "Петрович" if index % 2 else "Павлович"},
                acting_user=admin,
                reason=f"Правка {index + 1}",
            )
        for index in range(HISTORY_NOTES):
            actions.do_add_note(subscriber, acting_user=admin, text=f"Звонок {index + 1}: консультация по тарифу")
        nas = Nas.objects.filter(name="bench-nas").first() or do_create_nas(
            acting_user=admin,
            name="bench-nas",
            ip_address="192.0.2.36",
            secret="bench-shared-secret-36",
            vendor="mikrotik",
        )
        start = clock.now() - dt.timedelta(days=HISTORY_MONTHS * 30)
        sessions = []
        for day in range(HISTORY_MONTHS * 30):
            began = start + dt.timedelta(days=day)
            sessions.append(
                Session(
                    nas=nas,
                    unique_id=f"bench-history-{day}",
                    acct_session_id=f"{day:08x}",
                    subscriber=subscriber,
                    username="dolgozhitelev",
                    framed_ip="100.64.36.36",
                    status="closed",
                    started_at=began,
                    updated_at=began + dt.timedelta(hours=20),
                    stopped_at=began + dt.timedelta(hours=20),
                    session_time=20 * 3600,
                    input_octets=300_000_000,
                    output_octets=3_000_000_000,
                    terminate_cause="User-Request",
                )
            )
        Session.objects.bulk_create(sessions)
    return subscriber


def main() -> None:
    parser = base_parser(NAME, default_n=1_000_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", dest="n", type=int, help="the same as --n")
    parser.add_argument("--requests", type=int, default=100, help="timed requests per page (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per page first (default 10)")
    args = parser.parse_args()
    setup = prepare(NAME, args.n, engine=args.engine, reseed=args.reseed, seed=args.seed, extra_subscribers=1)

    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from abonent.staff.models import StaffUser
    from abonent.staff.permissions import Role

    user, _ = StaffUser.objects.get_or_create(
        username="bench-operator", defaults={"role": Role.OPERATOR, "full_name": "Benchmark operator"}
    )
    client = Client(raise_request_exception=True)
    client.force_login(user)
    history = history_subscriber()
    rng = random.Random(args.seed + 2)
    log("sampling seeded rows")
    pool = Pool(rng, 4000)
    flats = [(s, a) for s, a in pool.addresses if a.apartment]
    list_url = reverse("subscribers:list")

    def card_url(subscriber) -> str:
        return reverse("subscribers:card", args=[subscriber.pk])

    def search(query: str, expected=None, *, opens=None):
        def check(response) -> None:
            if opens is not None:
                assert response.status_code == 302 and response["Location"] == card_url(opens), (query, response)
                return
            assert response.status_code == 200, (query, response.status_code)
            if expected is not None:
                assert expected in response.content.decode(), (query, expected)

        return list_url, {"q": query}, check

    def person():
        return rng.choice(pool.people)

    def surname():
        sub = person()
        return search(sub.last_name, f'subscriber-link">{sub.last_name}')

    def surname_name():
        sub = person()
        return search(f"{sub.last_name} {sub.first_name}", f'subscriber-link">{sub.last_name} {sub.first_name}')

    def initials():
        sub = person()
        typed = f"{sub.last_name} {sub.first_name[0]}.{sub.middle_name[0]}."
        return search(typed, f'subscriber-link">{sub.last_name} {sub.first_name[0]}')

    def street_flat():
        sub, address = rng.choice(flats)
        street = " ".join(w for w in address.street.split() if w not in STREET_WORDS_DROPPED)
        return search(f"{street} {address.house}-{address.apartment}", sub.account_number)

    def phone():
        sub, value = rng.choice(pool.phones)
        others = sum(1 for s, v in pool.phones if v == value)
        return search(_phone_plus(value), opens=sub if others == 1 else None)

    def account():
        sub = rng.choice(pool.subscribers)
        return search(sub.account_number, opens=sub)

    def plain_list():
        return list_url, {}, lambda response: _ok(response)

    def card():
        def check(response) -> None:
            assert response.status_code == 200 and history.account_number in response.content.decode()

        return card_url(history), {}, check

    pages = {
        "list": plain_list,
        "search_surname": surname,
        "search_surname_name": surname_name,
        "search_initials": initials,
        "search_street_flat": street_flat,
        "search_phone": phone,
        "search_account": account,
        "card_3_years": card,
    }
    absent = []
    try:
        dashboard_url = reverse("dashboard:home")
    except NoReverseMatch:
        absent.append("dashboard")
        log("dashboard: dashboard:home does not reverse in this branch; reported as absent")
    else:
        pages["dashboard"] = lambda: (dashboard_url, {}, _ok)

    results = {}
    started = time.perf_counter()
    total = 0
    for name, make in pages.items():
        for _ in range(args.warmup):
            url, params, check = make()
            check(client.get(url, params))
        timings = []
        for _ in range(args.requests):
            url, params, check = make()
            t0 = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - t0) * 1000)
            check(response)
        total += len(timings)
        results[name] = {
            "p50_ms": round(percentile(timings, 50), 1),
            "p95_ms": round(percentile(timings, 95), 1),
            "max_ms": round(max(timings), 1),
        }
        log(f"  {name:<22} p50={results[name]['p50_ms']:7.1f} ms  p95={results[name]['p95_ms']:7.1f} ms")
    seconds = time.perf_counter() - started
    worst = max(r["p95_ms"] for r in results.values())
    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "n": args.n,
            "requests": total,
            "seconds": round(seconds, 2),
            "rate": round(total / seconds, 1),
            "p95_ms": worst,
            "target_p95_ms": TARGET_P95_MS,
            "within_target": [name for name, r in results.items() if r["p95_ms"] <= TARGET_P95_MS],
            "pages": results,
            "absent": absent,
            "seed_seconds": setup.seed_seconds,
        }
    )


def _ok(response) -> None:
    assert response.status_code == 200, response.status_code


if __name__ == "__main__":
    main()
