"""The dunning sweep over every subscriber, where 5 % of them change state since the last sweep.

    python bench/dunning_sweep.py [--n 1000000] [--chunk C]

The database is seeded once (``abonent seed``'s staff, catalog, subscribers and billing steps: a phone for every
subscriber, e-mail for some, one subscription each on the demo plans, about 30 % daily) and reused. Every
invocation then builds the same world at a fixed moment (20 January 2030, 12:00 in Moscow), untimed, set-based:

- each subscriber falls in a group by a hash of its id (``GROUPS``): most are paid up (active), some warned,
  restricted, suspended, frozen, or in debt under an exemption; a plan rule (the gamer plan: warned 5 days ahead,
  suspended after 21) and a group exemption ("Никогда не блокировать") are in force, so the facts query takes its
  full form;
- balances reach their group's figure through ledger postings (one adjustment per subscriber whose balance
  differs, both legs in one statement: the ledger's triggers refuse an UPDATE of a balance);
- the access states are written as the previous sweep left them, and one untimed sweep settles whatever that
  missed (its count is logged: it should be 0);
- then the money moves for 5 %: charges push 1.5 % into debt and 1 % close to running out, payments bring back
  1.5 % of the restricted and 0.5 % of the suspended, and 0.5 % have been restricted long enough to be suspended.

Timed: ``sweep()``, what the worker runs every 10 minutes, with its time per phase (facts query, decisions,
writes, notices). Then it checks what it timed: every subscriber's state is the one its group ends in, one
transition per change, a notice for each, and a second sweep writes nothing. Target (DESIGN.md §5): 1,000,000
subscribers in ≤ 30 s on PostgreSQL (the world is built with PostgreSQL's SQL; there is no SQLite variant).
Progress goes to stderr; the last line on stdout is the JSON result.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, prepare

os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "dunning_sweep"
SEEDED_APPS = ("staff", "catalog", "subscribers", "billing")
TARGET_SECONDS = 30
MOMENT = dt.datetime(2030, 1, 20, 9, 0, tzinfo=dt.UTC)  # 12:00 in Moscow: outside the quiet hours
SETTLED_AT = MOMENT - dt.timedelta(minutes=10)  # the previous sweep
TODAY = dt.date(2030, 1, 20)
NEXT_MONTH = dt.date(2030, 2, 1)
EXEMPT_GROUP = "Никогда не блокировать"
RULE_PLAN = "gamer"  # warned 5 days ahead, suspended after 21 days restricted

# (group, end bucket) out of 10,000, in order: where each subscriber stands before the money moves.
GROUPS = [
    ("to_restricted", 150),
    ("to_warned", 250),
    ("active", 8500),
    ("warned", 9000),
    ("restricted_to_active", 9150),
    ("restricted_to_suspended", 9200),
    ("restricted", 9550),
    ("exempt", 9600),
    ("suspended_to_active", 9650),
    ("suspended", 9800),
    ("frozen", 9850),
    ("active", 10000),
]
RESTRICTED_BEFORE = "('restricted_to_active', 'restricted_to_suspended', 'restricted', 'exempt')"
SUSPENDED_BEFORE = "('suspended_to_active', 'suspended')"
HEALTHY = "('active', 'to_restricted', 'frozen')"


def _params(sql: str, params):
    """SQL's modulo (`` % ``) doubled where there are parameters to interpolate; none: left as it is."""
    if not params:
        return sql, None
    return sql.replace(" % ", " %% "), params


def _execute(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(*_params(sql, params))
        return cursor.rowcount


def _rows(sql: str, params=None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(*_params(sql, params))
        return cursor.fetchall()


def _scalar(sql: str, params=None):
    return _rows(sql, params)[0][0]


def build_world(exempt_group: int) -> dict[str, int]:
    """``bench_world``: a row per subscriber the sweep reads, with its group and the figures of the group
    (credit limit, next monthly charge, balance before and after the money moves, days restricted, the state
    before and after)."""
    group = "CASE " + " ".join(f"WHEN bucket < {end} THEN '{name}'" for name, end in GROUPS) + " END"
    healthy = "CASE WHEN daily THEN 200 + (id % 19) * 100 ELSE 100 + (id % 15) * 100 END"
    _execute("DROP TABLE IF EXISTS bench_world")
    # The bucket (0–9999): the top 20 bits of a multiplicative hash of the id, well mixed.
    _execute(
        f"""
        CREATE UNLOGGED TABLE bench_world AS
        WITH base AS (
            SELECT s.id, a.id AS account_id, a.balance AS balance_now, x.id AS subscription_id,
                pl.charge_mode = 'daily' AS daily, pp.monthly_fee AS fee,
                (s.id * 2654435761 % 4294967296) / 4096 % 10000 AS bucket,
                EXISTS (SELECT 1 FROM subscribers_subscriber_groups g
                        WHERE g.subscriber_id = s.id AND g.subscribergroup_id = %s) AS exempt_member
            FROM subscribers_subscriber s
            JOIN billing_ledgeraccount a ON a.subscriber_id = s.id
            JOIN billing_subscription x ON x.subscriber_id = s.id AND x.status IN ('active', 'frozen')
            JOIN catalog_plan pl ON pl.id = x.plan_id
            JOIN catalog_planprice pp ON pp.plan_id = pl.id
            WHERE s.status <> 'closed'
        ), grouped AS (
            SELECT base.*, {group} AS grp FROM base
        ), figures AS (
            SELECT grouped.*,
                CASE WHEN grp IN {HEALTHY} AND id % 25 = 0 THEN 300 ELSE 0 END::numeric(14, 2) AS credit,
                CASE WHEN NOT daily AND grp IN ('to_warned', 'warned') THEN DATE '{TODAY}' + 2
                    ELSE DATE '{NEXT_MONTH}' END AS next_charge,
                (CASE
                    WHEN grp IN {HEALTHY} THEN {healthy}
                    WHEN grp = 'to_warned' THEN CASE WHEN daily THEN 300 + (id % 5) * 50
                        ELSE fee + 100 + (id % 5) * 50 END
                    WHEN grp = 'warned' THEN CASE WHEN daily THEN 20 + (id % 3) * 10 ELSE (id % 5) * 90 END
                    WHEN grp IN {RESTRICTED_BEFORE} THEN -(50 + (id % 30) * 20)
                    ELSE -(700 + (id % 20) * 30) END)::numeric(14, 2) AS before,
                CASE WHEN grp IN {RESTRICTED_BEFORE} THEN 1 + id % 12
                    WHEN grp IN {SUSPENDED_BEFORE} THEN 30 + id % 30 END AS restricted_days,
                exempt_member OR grp = 'exempt' AS exempt
            FROM grouped
        )
        SELECT figures.*,
            (CASE
                WHEN grp = 'to_restricted' THEN -(credit + 50 + (id % 10) * 20)
                WHEN grp = 'to_warned' THEN CASE WHEN daily THEN 40 ELSE 100 + (id % 3) * 100 END
                WHEN grp IN ('restricted_to_active', 'suspended_to_active') THEN 1000 + (id % 5) * 100
                ELSE before END)::numeric(14, 2) AS after,
            CASE
                WHEN grp IN ('active', 'to_restricted', 'to_warned') THEN 'active'
                WHEN grp = 'warned' THEN 'warned'
                WHEN grp = 'frozen' THEN 'frozen'
                WHEN exempt THEN 'warned'
                WHEN grp IN {RESTRICTED_BEFORE} THEN 'restricted'
                ELSE 'suspended' END AS state_before,
            CASE
                WHEN grp IN ('to_warned', 'warned') THEN 'warned'
                WHEN grp IN ('restricted_to_active', 'suspended_to_active') THEN 'active'
                WHEN grp IN ('active', 'frozen') THEN grp
                WHEN exempt THEN 'warned'
                WHEN grp IN ('to_restricted', 'restricted') THEN 'restricted'
                ELSE 'suspended' END AS state_after
        FROM figures
        """,
        [exempt_group],
    )
    _execute("ALTER TABLE bench_world ADD PRIMARY KEY (id)")
    _execute("ANALYZE bench_world")
    return dict(_rows("SELECT grp, COUNT(*) FROM bench_world GROUP BY grp ORDER BY grp"))


def post(amounts: str, *, prefix: str, kind: str, contra_account: int, memo: str) -> int:
    """A two-leg ledger transaction per row of ``amounts`` (a query of ``subscriber_id, account_id, amount``):
    the subscriber's account and ``contra_account``, both legs of every transaction in one INSERT (the ledger's
    zero-sum trigger sees each whole), the balances moved by the ledger's own trigger."""
    from abonent.core import clock

    last = _scalar("SELECT COALESCE(MAX(id), 0) FROM billing_ledgertransaction")
    _execute("DROP TABLE IF EXISTS bench_moves")
    _execute(f"CREATE TEMPORARY TABLE bench_moves AS SELECT * FROM ({amounts}) m WHERE m.amount <> 0")
    count = _execute(
        "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
        "subscriber_id, memo, legs) "
        "SELECT %s || m.subscriber_id, encode(sha256(convert_to(%s || m.subscriber_id || ':' || m.amount::text, "
        "'UTF8')), 'hex'), %s, %s, %s, m.subscriber_id, %s, 2 FROM bench_moves m ORDER BY m.subscriber_id",
        [prefix, prefix, kind, TODAY, clock.now(), memo],
    )
    _execute(
        "INSERT INTO billing_posting (transaction_id, account_id, amount) "
        "SELECT t.id, CASE WHEN leg.n = 1 THEN m.account_id ELSE %s END, "
        "CASE WHEN leg.n = 1 THEN m.amount ELSE -m.amount END "
        "FROM billing_ledgertransaction t JOIN bench_moves m ON m.subscriber_id = t.subscriber_id "
        "CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2) AS leg "
        "WHERE t.id > %s AND t.idempotency_key LIKE %s ORDER BY t.id, leg.n",
        [contra_account, last, prefix + "%"],
    )
    _execute("DROP TABLE bench_moves")
    return count


def reset(run: str, gamer_plan: int, exempt_group: int) -> None:
    """Everything the sweep reads, as the world says before the money moves; states as the last sweep left them."""
    from abonent.billing import ledger
    from abonent.dunning.models import DunningRule, Exemption

    adjustments = ledger.system_account("adjustments").pk
    moved = post(
        "SELECT id AS subscriber_id, account_id, before - balance_now AS amount FROM bench_world",
        prefix=f"adjustment:bench-dunning:{run}:reset:",
        kind="adjustment",
        contra_account=adjustments,
        memo="bench: balance of the group",
    )
    log(f"reset: {moved:,} balances moved to their group's figure")
    _execute(
        "UPDATE billing_ledgeraccount a SET credit_limit = w.credit FROM bench_world w "
        "WHERE a.id = w.account_id AND a.credit_limit <> w.credit"
    )
    _execute(
        "UPDATE billing_subscription x SET status = CASE WHEN w.grp = 'frozen' THEN 'frozen' ELSE 'active' END, "
        "next_charge_on = w.next_charge FROM bench_world w WHERE x.id = w.subscription_id "
        "AND (x.status <> CASE WHEN w.grp = 'frozen' THEN 'frozen' ELSE 'active' END "
        "OR x.next_charge_on <> w.next_charge)"
    )
    _execute("TRUNCATE dunning_accessstate, dunning_accesstransition, notifications_message")
    DunningRule.objects.all().delete()
    Exemption.objects.all().delete()
    DunningRule.objects.create(name="Игровой", plan_id=gamer_plan, warn_days=5, suspend_after_days=21)
    starts, ends = TODAY - dt.timedelta(days=30), TODAY + dt.timedelta(days=300)
    if exempt_group:
        Exemption.objects.create(
            group_id=exempt_group, reason=EXEMPT_GROUP, starts_on=starts, expires_on=ends, created_at=SETTLED_AT
        )
    _execute(
        "INSERT INTO dunning_exemption (subscriber_id, reason, starts_on, expires_on, created_at) "
        "SELECT id, 'Больница', %s, %s, %s FROM bench_world WHERE grp = 'exempt'",
        [starts, ends, SETTLED_AT],
    )
    # The states the previous sweep wrote: the not active ones, and the exempt (their flag is kept).
    left = "CASE WHEN daily THEN FLOOR(before / (fee / 28)) ELSE 2 + 30 * FLOOR(before / fee) END"
    _execute(
        f"""
        INSERT INTO dunning_accessstate (subscriber_id, state, since, restricted_since, runout_on, owed,
            reminded_for, reminded_days, exempt, reason, evaluated_at)
        SELECT id, state_before,
            %(moment)s - make_interval(days => COALESCE(restricted_days, 1)::int),
            CASE WHEN state_before IN ('restricted', 'suspended')
                THEN %(moment)s - make_interval(days => restricted_days::int) END,
            CASE WHEN state_before = 'frozen' THEN NULL
                WHEN before + credit < 0 THEN %(today)s
                ELSE %(today)s + ({left})::int END,
            GREATEST(-(before + credit), 0),
            CASE WHEN grp = 'warned' THEN %(today)s + ({left})::int END,
            CASE WHEN grp = 'warned' THEN CASE WHEN {left} <= 1 THEN 1 ELSE 3 END END,
            exempt, '', %(settled)s
        FROM bench_world WHERE state_before <> 'active' OR exempt
        """,
        {"moment": MOMENT, "today": TODAY, "settled": SETTLED_AT},
    )


def move_money(run: str) -> dict[str, int]:
    """The 5 %: charges and payments through the ledger, and the days restricted that reach the rule's D."""
    from abonent.billing import ledger

    prefix = f"bench-dunning:{run}:move:"
    charges = post(
        "SELECT id AS subscriber_id, account_id, after - before AS amount FROM bench_world WHERE after < before",
        prefix=f"adjustment:{prefix}",
        kind="adjustment",
        contra_account=ledger.system_account("adjustments").pk,
        memo="bench: charge",
    )
    payments = post(
        "SELECT id AS subscriber_id, account_id, after - before AS amount FROM bench_world WHERE after > before",
        prefix=f"payment:{prefix}",
        kind="payment",
        contra_account=ledger.cash_account("bank").pk,
        memo="bench: payment",
    )
    aged = _execute(
        "UPDATE dunning_accessstate st SET restricted_since = %s - make_interval(days => 25 + w.id::int % 5), "
        "since = %s - make_interval(days => 25 + w.id::int % 5) "
        "FROM bench_world w WHERE st.subscriber_id = w.id AND w.grp = 'restricted_to_suspended'",
        [MOMENT, MOMENT],
    )
    return {"charges": charges, "payments": payments, "aged": aged}


def vacuum() -> None:
    for table in (
        "billing_ledgeraccount",
        "billing_subscription",
        "dunning_accessstate",
        "dunning_accesstransition",
        "notifications_message",
        "dunning_exemption",
    ):
        _execute(f"VACUUM (ANALYZE) {table}")


def main() -> None:
    parser = base_parser(NAME, default_n=1_000_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk", type=int, default=None, help="subscribers per facts query (default: the sweep's)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the timed sweep's main thread into FILE")
    args = parser.parse_args()
    if args.engine != "postgresql":
        raise SystemExit("this benchmark builds its world with PostgreSQL's SQL; run it on PostgreSQL")
    setup = prepare(NAME, args.n, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=SEEDED_APPS)

    from abonent.catalog.models import Plan
    from abonent.core import clock
    from abonent.dunning import evaluation
    from abonent.subscribers.models import SubscriberGroup

    gamer_plan = Plan.objects.get(code=RULE_PLAN).pk
    exempt_group = SubscriberGroup.objects.filter(name=EXEMPT_GROUP).values_list("pk", flat=True).first() or 0
    run = str(int(time.time()))
    started = time.monotonic()
    groups = build_world(exempt_group)
    log(f"world: {sum(groups.values()):,} subscribers in groups {groups}")
    with clock.travel_to(SETTLED_AT):
        reset(run, gamer_plan, exempt_group)
        vacuum()
        settle = evaluation.sweep(**({"chunk": args.chunk} if args.chunk else {}))
    log(f"settled in {time.monotonic() - started:.1f}s (the previous sweep's states; settle sweep wrote {settle})")
    with clock.travel_to(MOMENT):
        moves = move_money(run)
    log(f"money moved: {moves}")
    expected = _scalar("SELECT COUNT(*) FROM bench_world WHERE state_before <> state_after")

    timings: dict[str, float] = {}
    with clock.travel_to(MOMENT):
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started = time.perf_counter()
        result = evaluation.sweep(timings=timings, **({"chunk": args.chunk} if args.chunk else {}))
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    phases = {name: round(value, 2) for name, value in timings.items()}
    log(f"sweep: {result} in {seconds:.1f}s; phases {phases}")

    wrong = _rows(
        "SELECT w.grp, COALESCE(st.state, 'active'), w.state_after, COUNT(*) FROM bench_world w "
        "LEFT JOIN dunning_accessstate st ON st.subscriber_id = w.id "
        "WHERE COALESCE(st.state, 'active') <> w.state_after GROUP BY 1, 2, 3 ORDER BY 4 DESC"
    )
    transitions = _scalar("SELECT COUNT(*) FROM dunning_accesstransition WHERE at = %s", [MOMENT])
    messages = dict(
        _rows("SELECT event, COUNT(*) FROM notifications_message WHERE created_at = %s GROUP BY event", [MOMENT])
    )
    log(f"checked: {expected:,} changes expected, {transitions:,} transitions, messages {messages}")
    for row in wrong[:10]:
        log(f"  wrong state: group {row[0]} is {row[1]}, expected {row[2]}: {row[3]:,}")

    with clock.travel_to(MOMENT + dt.timedelta(minutes=10)):
        started = time.perf_counter()
        rerun = evaluation.sweep(**({"chunk": args.chunk} if args.chunk else {}))
        rerun_seconds = time.perf_counter() - started
    log(f"rerun: {rerun} in {rerun_seconds:.1f}s")

    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "subscribers": result["subscribers"],
            "n": args.n,
            "changed": result["moved"],
            "expected_changes": expected,
            "written": result["written"],
            "transitions": transitions,
            "messages": sum(messages.values()),
            "wrong_states": sum(row[3] for row in wrong),
            "seconds": round(seconds, 1),
            "rate": round(result["subscribers"] / seconds),
            "phases": phases,
            "rerun_seconds": round(rerun_seconds, 1),
            "rerun_written": rerun["written"],
            "settle_written": settle["written"],
            "target_seconds": TARGET_SECONDS,
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
