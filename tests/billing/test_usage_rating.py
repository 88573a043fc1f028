"""Traffic over the included volume, rated per billing period: exact amounts, the ledger, exactly-once."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions
from abonent.billing.ledger import verify
from abonent.billing.models import ChargeKind, LedgerTransaction, UsageRating
from abonent.billing.rating.common import overage
from abonent.billing.rating.traffic import rate_usage
from abonent.billing.testing import balance, run_on
from abonent.core import clock
from tests.billing.usage_helpers import (
    DEC,
    GB,
    JAN,
    NOV,
    add_usage,
    overage_plan,
    rate_on,
    rating,
    spread,
    usage_charges,
    usage_revenue,
)

D = Decimal
MB = GB // 1000


@pytest.fixture
def on_overage(make_plan, subscriber, admin):
    """On 500 GB + 2 ₽/GB (per started GB) since 1 November 2026, 5,000 ₽ paid."""
    plan = overage_plan(make_plan)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    return subscription


def test_issue_scenario_512_3_gb_used_is_13_gb_over_26_rub(on_overage, subscriber):
    spread(subscriber, NOV, 30, 512_300_000_000)
    before = balance(subscriber)
    result = rate_on(DEC)
    assert (result.periods, result.charges, result.amount) == (1, 1, D("26.00"))
    assert usage_charges(on_overage) == [(ChargeKind.USAGE, NOV, D("26.00"), 13 * GB, 0)]
    assert balance(subscriber) == before - D("26.00")
    assert usage_revenue() == D("26.00")
    row = rating(on_overage, NOV)
    assert (row.used_bytes, row.included_bytes, row.charged_bytes, row.amount, row.period_end) == (
        512_300_000_000,
        500 * GB,
        13 * GB,
        D("26.00"),
        DEC,
    )
    tx = LedgerTransaction.objects.get(kind="usage")
    assert tx.effective_date == DEC and tx.idempotency_key.startswith("usage:2026-12-01:")
    assert verify() == []


def test_rating_twice_charges_once_and_nothing_before_the_period_ends(on_overage, subscriber):
    spread(subscriber, NOV, 30, 600 * GB)
    assert rate_on(dt.date(2026, 11, 30)).periods == 0  # November has not ended
    assert rate_on(DEC).amount == D("200.00")
    again = rate_on(DEC)
    assert (again.periods, again.charges, again.adjustments, again.amount) == (0, 0, 0, D("0.00"))
    rate_on(dt.date(2026, 12, 15))
    assert usage_charges(on_overage) == [(ChargeKind.USAGE, NOV, D("200.00"), 100 * GB, 0)]
    assert verify() == []


def test_under_the_included_volume_rated_at_zero_with_no_charge(on_overage, subscriber):
    spread(subscriber, NOV, 10, 499 * GB)
    result = rate_on(DEC)
    assert (result.periods, result.charges, result.amount) == (1, 0, D("0.00"))
    assert usage_charges(on_overage) == []
    assert rating(on_overage, NOV).amount == D("0.00")
    assert LedgerTransaction.objects.filter(kind="usage").count() == 0


def test_late_usage_after_the_period_was_rated_is_one_adjustment(on_overage, subscriber):
    spread(subscriber, NOV, 30, 512_300_000_000)
    rate_on(DEC)
    # A spool replayed on 3 December: 2.5 GB more of 28 November.
    add_usage(subscriber, dt.date(2026, 11, 28), download=2_500_000_000)
    result = rate_on(dt.date(2026, 12, 3))
    assert (result.periods, result.charges, result.adjustments, result.amount) == (0, 0, 1, D("4.00"))
    rate_on(dt.date(2026, 12, 3))
    rate_on(dt.date(2026, 12, 4))
    assert usage_charges(on_overage) == [
        (ChargeKind.USAGE, NOV, D("26.00"), 13 * GB, 0),
        (ChargeKind.USAGE_ADJUSTMENT, NOV, D("4.00"), 2 * GB, 1),  # 514.8 GB: 15 GB over, 30 ₽ in all
    ]
    row = rating(on_overage, NOV)
    assert (row.amount, row.revision, row.charged_bytes) == (D("30.00"), 1, 15 * GB)
    assert usage_revenue() == D("30.00")
    assert verify() == []


def test_late_usage_turning_a_zero_period_into_overage_is_an_adjustment(on_overage, subscriber):
    spread(subscriber, NOV, 30, 499 * GB)
    rate_on(DEC)
    add_usage(subscriber, dt.date(2026, 11, 30), download=2 * GB)
    rate_on(dt.date(2026, 12, 2))
    assert usage_charges(on_overage) == [(ChargeKind.USAGE_ADJUSTMENT, NOV, D("2.00"), GB, 1)]


def test_late_usage_past_the_lookback_is_not_rated_again(on_overage, subscriber, settings):
    settings.ABONENT_USAGE_RATING_LOOKBACK_DAYS = 40
    spread(subscriber, NOV, 30, 501 * GB)
    rate_on(DEC)
    add_usage(subscriber, dt.date(2026, 11, 30), download=10 * GB)
    rate_on(dt.date(2027, 1, 11))  # 41 days after November ended: outside the window
    assert [c[0] for c in usage_charges(on_overage)] == [ChargeKind.USAGE]
    rate_on(dt.date(2027, 1, 10))  # 40 days: inside
    assert [c[2] for c in usage_charges(on_overage)] == [D("2.00"), D("20.00")]


def test_usage_written_after_the_lookback_is_counted_not_charged(on_overage, subscriber, settings):
    settings.ABONENT_USAGE_RATING_LOOKBACK_DAYS = 40
    spread(subscriber, NOV, 30, 501 * GB)
    rate_on(DEC)
    add_usage(subscriber, dt.date(2026, 11, 30), download=10 * GB)
    result = rate_on(dt.date(2027, 1, 11))
    assert (result.late_unrated, result.adjustments) == (1, 0)
    assert [c[0] for c in usage_charges(on_overage)] == [ChargeKind.USAGE]


def test_a_settled_period_is_read_again_only_for_its_late_days(on_overage, subscriber):
    from django.db.models import F

    from abonent.network.models import UsageDay

    spread(subscriber, NOV, 30, 501 * GB)
    rate_on(DEC)
    assert not UsageDay.objects.filter(subscriber=subscriber, late=True).exists()  # the run unmarked what it read
    last = UsageDay.objects.filter(subscriber=subscriber, day=dt.date(2026, 11, 30))
    last.update(output_octets=F("output_octets") + 10 * GB)  # unmarked: not looked for once the period settled
    rate_on(dt.date(2026, 12, 5))
    assert [c[2] for c in usage_charges(on_overage)] == [D("2.00")]
    last.update(late=True)
    result = rate_on(dt.date(2026, 12, 6))
    assert [c[2] for c in usage_charges(on_overage)] == [D("2.00"), D("20.00")]
    assert result.adjustments == 1
    assert not UsageDay.objects.filter(subscriber=subscriber, late=True).exists()


def test_missed_runs_rate_every_period_in_the_window(on_overage, subscriber):
    spread(subscriber, NOV, 30, 501 * GB)
    spread(subscriber, DEC, 31, 503 * GB)
    result = rate_on(dt.date(2027, 1, 5))
    assert (result.periods, result.amount) == (2, D("8.00"))
    assert [(c[1], c[2]) for c in usage_charges(on_overage)] == [(NOV, D("2.00")), (DEC, D("6.00"))]


def test_a_decrease_is_never_given_back(on_overage, subscriber):
    from abonent.network.models import UsageDay

    spread(subscriber, NOV, 30, 510 * GB)
    rate_on(DEC)
    UsageDay.objects.filter(subscriber=subscriber, day=dt.date(2026, 11, 30)).delete()
    result = rate_on(dt.date(2026, 12, 2))
    assert result.decreased == [(on_overage.pk, NOV)]
    assert usage_charges(on_overage) == [(ChargeKind.USAGE, NOV, D("20.00"), 10 * GB, 0)]
    assert rating(on_overage, NOV).amount == D("20.00")


# --- rounding -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rounding", "over", "price", "expected_bytes", "expected"),
    [
        ("per_gb", 12_300_000_000, "2.00", 13 * GB, "26.00"),
        ("per_gb", 1, "2.00", GB, "2.00"),
        ("per_gb", 13 * GB, "2.00", 13 * GB, "26.00"),
        ("per_mb", 12_300_000_000, "2.00", 12_300 * MB, "24.60"),
        ("per_mb", 12_300_000_001, "2.00", 12_301 * MB, "24.60"),  # 24.602 → 24.60
        ("per_mb", 1, "3.5000", MB, "0.00"),  # 0.0035 ₽ rounds to nothing
        ("per_mb", 2 * MB + 1, "1.5000", 3 * MB, "0.00"),  # 0.0045 → 0.00
        ("per_mb", 3 * MB + 1, "1.5000", 4 * MB, "0.01"),  # 0.006 → 0.01
        ("per_byte", 12_300_000_000, "2.00", 12_300_000_000, "24.60"),
        ("per_byte", 2_500_000, "2.00", 2_500_000, "0.01"),  # exactly half a kopeck: half-up
        ("per_byte", 2_499_999, "2.00", 2_499_999, "0.00"),
        ("per_byte", 1, "1.2345", 1, "0.00"),
        ("per_gb", 0, "2.00", 0, "0.00"),
        ("per_gb", -5, "2.00", 0, "0.00"),
    ],
)
def test_overage_rounding(rounding, over, price, expected_bytes, expected):
    assert overage(over, D(price), rounding) == (expected_bytes, D(expected))


def test_per_mb_plan_charged_per_started_mb(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, overage_rounding="per_mb", price="1.5000")
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    add_usage(subscriber, dt.date(2026, 11, 3), download=500 * GB + 1_234_567_891)
    rate_on(DEC)
    # 1,234,567,891 bytes over: 1,235 started MB × 0.0015 ₽ = 1.8525 → 1.85
    assert usage_charges(subscription) == [(ChargeKind.USAGE, NOV, D("1.85"), 1235 * MB, 0)]


def test_per_byte_plan_rounded_once(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, overage_rounding="per_byte", price="2.5000")
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    for day in range(1, 31):  # thirty days of 17,000,333 bytes over each would round to 0.04 ₽ a day
        add_usage(subscriber, dt.date(2026, 11, day), download=500 * GB // 30 + 17_000_333)
    rate_on(DEC)
    over = 500 * GB // 30 * 30 + 30 * 17_000_333 - 500 * GB
    assert usage_charges(subscription) == [(ChargeKind.USAGE, NOV, D("1.28"), over, 0)]  # 1.2750 → 1.28


# --- directions and policies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("both", "90.00"), ("download", "10.00"), ("upload", "0.00"), ("greater", "10.00")],
)
def test_direction(make_plan, subscriber, admin, direction, expected):
    plan = overage_plan(make_plan, included_gb=100, traffic_direction=direction)
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    add_usage(subscriber, dt.date(2026, 11, 5), download=105 * GB, upload=20 * GB)
    add_usage(subscriber, dt.date(2026, 11, 6), upload=20 * GB)
    rate_on(DEC)
    assert sum((c[2] for c in usage_charges(subscription)), D("0.00")) == D(expected)


def test_greater_is_of_the_period_totals_not_of_each_day(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, included_gb=100, traffic_direction="greater")
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    add_usage(subscriber, dt.date(2026, 11, 5), download=60 * GB, upload=10 * GB)
    add_usage(subscriber, dt.date(2026, 11, 6), download=10 * GB, upload=62 * GB)
    rate_on(DEC)  # download 70, upload 72: 72 GB counted, not 60 + 62
    assert usage_charges(subscription) == []
    assert rating(subscription, NOV).used_bytes == 72 * GB


def test_fup_only_plan_is_not_charged(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, traffic_policy="fup", fup_download_kbps=1000, fup_upload_kbps=1000)
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, NOV, 30, 900 * GB)
    assert rate_on(DEC).periods == 0
    assert usage_charges(subscription) == [] and not UsageRating.objects.exists()


def test_both_policy_is_charged(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, traffic_policy="both", fup_download_kbps=1000, fup_upload_kbps=1000)
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, NOV, 30, 501 * GB)
    rate_on(DEC)
    assert [c[2] for c in usage_charges(subscription)] == [D("2.00")]


def test_no_included_volume_means_unlimited(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, included_gb=None)
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, NOV, 30, 900 * GB)
    rate_on(DEC)
    assert usage_charges(subscription) == []


def test_other_subscribers_traffic_is_not_counted(on_overage, subscriber, make_subscriber):
    other = make_subscriber(last_name="Петров", phone="+79160000000")
    spread(other, NOV, 30, 900 * GB)
    spread(subscriber, NOV, 30, 501 * GB)
    rate_on(DEC)
    assert [c[2] for c in usage_charges(on_overage)] == [D("2.00")]


# --- partial periods, plan changes, freezes and terminations ------------------------------------------------


def test_started_mid_month_gets_a_prorated_included_volume(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, included_gb=300)
    with clock.travel_to(dt.date(2026, 11, 21)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, dt.date(2026, 11, 21), 10, 105 * GB)  # 10 of 30 days: 100 GB included
    rate_on(DEC)
    assert rating(subscription, NOV).included_bytes == 100 * GB
    assert usage_charges(subscription) == [(ChargeKind.USAGE, NOV, D("10.00"), 5 * GB, 0)]


def test_mid_period_plan_change_rates_each_part_under_its_plan(make_plan, subscriber, admin):
    cheap = overage_plan(make_plan, "traffic-300", included_gb=300, price="2.00")
    big = overage_plan(make_plan, "traffic-600", included_gb=600, price="1.00")
    cheap.switchable_to.add(big)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=cheap, acting_user=admin)
    # 1–10 November on 300 GB (10/30: 100 GB included), from the 11th on 600 GB (20/30: 400 GB included).
    spread(subscriber, NOV, 10, 110 * GB)
    with clock.travel_to(dt.datetime(2026, 11, 11, 12, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(subscription, plan=big, acting_user=admin, reason="upgrade")
    spread(subscriber, dt.date(2026, 11, 11), 20, 420_500_000_000)
    rate_on(DEC)
    row = rating(subscription, NOV)
    assert (row.used_bytes, row.included_bytes) == (530_500_000_000, 500 * GB)
    # 10 GB over at 2 ₽ + 20.5 GB over (21 started) at 1 ₽
    assert usage_charges(subscription) == [(ChargeKind.USAGE, NOV, D("41.00"), 31 * GB, 0)]
    assert verify() == []


def test_moving_to_a_fup_plan_mid_period_rates_only_the_overage_part(make_plan, subscriber, admin):
    metered = overage_plan(make_plan, "traffic-300", included_gb=300)
    fup = overage_plan(make_plan, "fup-300", included_gb=300, traffic_policy="fup")
    metered.switchable_to.add(fup)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=metered, acting_user=admin)
    spread(subscriber, NOV, 15, 160 * GB)  # 15/30 of 300 GB = 150 GB included: 10 over
    with clock.travel_to(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(subscription, plan=fup, acting_user=admin, reason="", force=True)
    spread(subscriber, dt.date(2026, 11, 16), 15, 900 * GB)
    rate_on(DEC)
    assert [c[2] for c in usage_charges(subscription)] == [D("20.00")]
    rate_on(JAN)  # December wholly on the FUP plan: not rated
    assert UsageRating.objects.filter(subscription=subscription).count() == 1


def test_terminated_subscription_rated_for_the_days_served(on_overage, subscriber, admin):
    spread(subscriber, NOV, 15, 300 * GB)
    with clock.travel_to(dt.date(2026, 11, 15)):
        actions.do_terminate_subscription(on_overage, acting_user=admin, reason="moved", on=dt.date(2026, 11, 15))
    # Served 1–15 November (the last day's traffic counts): 15/30 of 500 GB = 250 GB included.
    rate_on(DEC)
    assert rating(on_overage, NOV).included_bytes == 250 * GB
    assert usage_charges(on_overage) == [(ChargeKind.USAGE, NOV, D("100.00"), 50 * GB, 0)]
    assert rate_on(JAN).periods == 0
    assert verify() == []


def test_frozen_subscription_still_rated(on_overage, subscriber, admin, make_plan):
    from abonent.catalog.models import FreezePolicy

    policy = FreezePolicy.objects.create(name="free", min_days=1, max_days=60)
    on_overage.plan.freeze_policy = policy
    on_overage.plan.save()
    spread(subscriber, NOV, 10, 502 * GB)
    with clock.travel_to(dt.date(2026, 11, 20)):
        actions.do_freeze_subscription(on_overage, starts_on=dt.date(2026, 11, 20), days=30, acting_user=admin)
    rate_on(DEC)
    assert [c[2] for c in usage_charges(on_overage)] == [D("4.00")]


def test_anniversary_plan_rates_from_the_activation_day(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, period_anchor="anniversary")
    with clock.travel_to(dt.date(2026, 11, 10)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, dt.date(2026, 11, 10), 30, 501 * GB)
    add_usage(subscriber, dt.date(2026, 12, 10), download=50 * GB)  # the next period
    assert rate_on(dt.date(2026, 12, 9)).periods == 0
    rate_on(dt.date(2026, 12, 10))
    assert usage_charges(subscription) == [(ChargeKind.USAGE, dt.date(2026, 11, 10), D("2.00"), GB, 0)]
    assert rating(subscription, dt.date(2026, 11, 10)).period_end == dt.date(2026, 12, 10)


def test_rating_ahead_of_today_is_refused(on_overage):
    with clock.travel_to(NOV), pytest.raises(ValueError):
        rate_usage(DEC)


def test_chunks_rate_every_subscription(make_plan, make_subscriber, admin):
    plan = overage_plan(make_plan)
    subs = []
    for n in range(7):
        who = make_subscriber(last_name=f"Абонент{n}", phone=f"+7916000000{n}")
        with clock.travel_to(NOV):
            subs.append(actions.do_activate_subscription(who, plan=plan, acting_user=admin))
        add_usage(who, dt.date(2026, 11, 2), download=(500 + n) * GB)
    with clock.travel_to(DEC):
        result = rate_usage(DEC, chunk_size=3)
    assert (result.subscriptions, result.periods, result.charges, result.amount) == (7, 7, 6, D("42.00"))
    assert verify() == []


def test_billing_run_and_rating_together_keep_the_ledger_true(on_overage, subscriber):
    spread(subscriber, NOV, 30, 520 * GB)
    run_on(DEC)
    rate_on(DEC)
    assert balance(subscriber) == D("5000.00") - D("500.00") * 2 - D("40.00")
    assert verify() == []
