"""Sequences an attack review of the issue-11 money code found (each lost money, charged twice, gave service away or
left the ledger inconsistent before its fix). Exact amounts."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions, ledger
from abonent.billing.models import Charge, ChargeKind, UnbilledDay
from abonent.billing.testing import balance, charged_for, run_on

D = Decimal
NOV_1, DEC_1, JAN_1 = dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)
SERVICE = [ChargeKind.FEE, ChargeKind.PRORATION_CHARGE, ChargeKind.PRORATION_CREDIT, ChargeKind.REVERSAL]


def dec(day: int) -> dt.date:
    return dt.date(2026, 12, day)


# --- online-only daily plans: a day left unbilled is charged late whatever happened to the subscription since ----


@pytest.fixture
def hotspot(make_plan, freeze_policy):
    """310 ₽ a month, charged by the day (10.00 a day in December) and only after a day online; freezable."""
    return make_plan("hotspot", "310.00", charge_mode="daily", charge_only_if_online=True, freeze_policy=freeze_policy)


@pytest.fixture
def hotspot_unbilled_dec_3(hotspot, subscriber, admin, on):
    """On the hotspot plan since 1 November; online on 1 December; the run of 3 December knew nothing of the 2nd
    yet (the accounting spool came late), so 3 December is an ``UnbilledDay``."""
    with on(NOV_1):
        actions.do_post_payment(subscriber, amount="1000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=hotspot, acting_user=admin)
    actions.do_record_online_days([(subscriber.pk, dec(1))])
    run_on(dec(2))
    run_on(dec(3))
    assert UnbilledDay.objects.filter(subscription=subscription, day=dec(3)).exists()
    return subscription


def test_late_online_day_is_charged_after_the_termination(hotspot_unbilled_dec_3, subscriber, admin, on):
    """Terminated from 3 December (no service that day); the late record of 2 December then charges 3 December."""
    subscription = hotspot_unbilled_dec_3
    with on(dec(3)):
        actions.do_terminate_subscription(subscription, acting_user=admin, reason="moved away")
    actions.do_record_online_days([(subscriber.pk, dec(2))])  # the spool replayed late
    run_on(dec(4))

    # Expected: nothing for 3 December (ended_on = 3 December). Actual: 10.00.
    assert charged_for(subscription, dec(3), dec(4)) == D("0.00")
    assert ledger.verify() == []


def test_late_online_day_is_charged_twice_after_a_freeze_and_unfreeze(hotspot_unbilled_dec_3, subscriber, admin, on):
    """The late online day arrives; the same day a freeze and an unfreeze (next cycle, cursor back to 3 December)
    charge 3 December in the new cycle; the next run's late-day pass charges it again in the old cycle."""
    subscription = hotspot_unbilled_dec_3
    actions.do_record_online_days([(subscriber.pk, dec(2))])
    with on(dec(3)):
        actions.do_freeze_subscription(subscription, days=7, acting_user=admin)
        actions.do_unfreeze_subscription(subscription, acting_user=admin)
    run_on(dec(4))

    fees = sorted(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.FEE, period_start=dec(3)).values_list(
            "cycle", "amount"
        )
    )
    # Expected: 3 December charged once, 10.00. Actual: [(0, 10.00), (1, 10.00)], 20.00.
    assert charged_for(subscription, dec(3), dec(4)) == D("10.00"), fees
    assert ledger.verify() == []


def test_late_online_day_is_charged_during_a_freeze(hotspot_unbilled_dec_3, subscriber, admin, on):
    """Frozen from 3 December: the late record of 2 December charges 3 December, a frozen day."""
    subscription = hotspot_unbilled_dec_3
    with on(dec(3)):
        actions.do_freeze_subscription(subscription, days=7, acting_user=admin)
    actions.do_record_online_days([(subscriber.pk, dec(2))])
    run_on(dec(4))

    # Expected: 0.00 for 3 December (frozen). Actual: 10.00.
    assert charged_for(subscription, dec(3), dec(4)) == D("0.00")


def test_late_online_day_is_charged_at_the_old_plan_after_a_plan_change(
    hotspot_unbilled_dec_3, make_plan, hotspot, subscriber, admin, on
):
    """Switched on 3 December to a monthly plan, which charges 3–31 December; the late record of 2 December then
    charges 3 December once more at the daily plan's price."""
    subscription = hotspot_unbilled_dec_3
    monthly = make_plan("internet-100", "620.00")
    hotspot.switchable_to.add(monthly)
    with on(dec(3)):
        actions.do_change_plan(subscription, plan=monthly, acting_user=admin)
    actions.do_record_online_days([(subscriber.pk, dec(2))])
    run_on(dec(4))

    # 3–31 December at 620: round(620 × 29 / 31) = 580.00; 2 December at the daily plan: 10.00.
    # Expected 590.00 for 2–31 December. Actual: 600.00 (3 December paid twice).
    assert charged_for(subscription, dec(2), JAN_1) == D("590.00")


# --- a reversal of some days of a fee is undone by a freeze and an unfreeze ---------------------------------------


def test_days_to_come_cannot_be_given_back(subscribed, subscriber, admin, on):
    """Days given back before they were served were charged again by a later freeze and unfreeze (the unfreeze
    re-charges the rest of the period in a new cycle): 20–31 December given back on 5 December were paid after all.
    Only days served can be given back now; for days to come, a freeze."""
    from django.core.exceptions import ValidationError

    fee = Charge.objects.get(subscription=subscribed, kind=ChargeKind.FEE, period_start=DEC_1)
    with on(dec(5)):
        with pytest.raises(ValidationError) as refused:
            actions.do_reverse_charge(fee, reason="works 20–31 Dec", acting_user=admin, first_day=dec(20), until=JAN_1)
        served = actions.do_reverse_charge(fee, reason="no link 1–4 Dec", acting_user=admin)
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)
    with on(dec(15)):
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)

    assert refused.value.error_dict["until"][0].code == "days_not_served"
    assert (served.period_start, served.period_end, served.amount) == (DEC_1, dec(5), D("-83.87"))  # R(1) − R(5)
    # Served 5–9 and 15–31 December: R(5) − R(10) + R(15) = 566.13 − 461.29 + 356.45.
    assert charged_for(subscribed, DEC_1, JAN_1) == D("461.29")
    assert ledger.verify() == []


# --- the balance limit: credits that bypass it park the subscription, and then nothing is charged -----------------


def test_a_promised_payment_takes_the_balance_past_the_limit_and_the_run_then_charges_nothing(
    subscribed, subscriber, admin, on
):
    """Payments were refused past BALANCE_LIMIT (99,999,999,999.99), a promised payment was not: the balance reached
    100,000,000,xxx, at or beyond the run's PARK_BALANCE then, and every later run parked the subscription: January
    was never charged."""
    from django.core.exceptions import ValidationError

    with on(dec(2)):
        paid = D("5000.00") - D("650.00") - D("650.00")  # November and December charged
        for n in range(10):
            step = min(D("9999999999.99"), D("99999999999.99") - paid)
            actions.do_post_payment(subscriber, amount=str(step), channel="test", external_id=f"big-{n}")
            paid += step
        assert balance(subscriber) == D("99999999999.99")
        with pytest.raises(ValidationError):  # a payment is refused here
            actions.do_post_payment(subscriber, amount="1.00", channel="test", external_id="one-more")
        with pytest.raises(ValidationError) as refused:  # ...and so is a promised payment now
            actions.do_take_promised_payment(subscriber, acting_user=admin)
    result = run_on(JAN_1)

    assert refused.value.error_dict["amount"][0].code == "balance_out_of_range"
    assert balance(subscriber) <= D("99999999999.99")
    assert result.parked == []
    assert charged_for(subscribed, JAN_1, dt.date(2027, 2, 1)) == D("650.00")


def test_a_freeze_credit_takes_the_balance_past_the_limit_and_the_unfreeze_charges_nothing(
    subscribed, subscriber, admin, on
):
    """A freeze credit is not bounded either: at the limit, the credit pushes the balance past PARK_BALANCE and the
    unfreeze's charge (and every run after) parks the subscription: 15–31 December and January go free."""
    with on(dec(2)):
        paid = D("5000.00") - D("650.00") - D("650.00")
        for n in range(10):
            step = min(D("9999999999.99"), D("99999999999.99") - paid)
            actions.do_post_payment(subscriber, amount=str(step), channel="test", external_id=f"big-{n}")
            paid += step
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)  # fee 21.00, credit 461.29
    with on(dec(15)):
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)
    run_on(JAN_1)

    # Expected: 650 − R(10) + R(15) = 545.16 for December, 650.00 for January. Actual: 188.71 and 0.00.
    assert charged_for(subscribed, DEC_1, JAN_1) == D("545.16")
    assert charged_for(subscribed, JAN_1, dt.date(2027, 2, 1)) == D("650.00")


# --- a reversal of a freeze fee or a turbo is counted as a credit for days of service ------------------------------


def test_a_reversed_freeze_fee_is_taken_off_the_termination_credit(subscribed, subscriber, admin, on):
    """A reversal is kind ``reversal``, which ``SERVICE_KINDS`` counts as service whatever it reverses: the reversal
    of a 30-day freeze fee (90.00, span 10 December – 8 January, no price) is prorated over its span by
    ``charged_beyond`` and taken off the termination's credit."""
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=30, acting_user=admin)  # fee 90.00, credit 461.29
    freeze_fee = Charge.objects.get(subscription=subscribed, kind=ChargeKind.FREEZE_FEE)
    with on(dec(11)):
        actions.do_reverse_charge(freeze_fee, reason="frozen by mistake", acting_user=admin)
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)  # 11–31 charged: R(11) = 440.32
    with on(dec(20)):
        actions.do_terminate_subscription(subscribed, acting_user=admin, reason="moved away")

    termination_credit = Charge.objects.get(
        subscription=subscribed, kind=ChargeKind.PRORATION_CREDIT, event__kind="terminated"
    )
    # Expected: 20–31 December given back, R(20) = 251.61. Actual: 191.61 (251.61 − 20 of the freeze-fee
    # reversal's 30 days × 3.00).
    assert termination_credit.amount == D("-251.61")
    # Served 1–9 and 11–19 December: 650 − R(10) + R(11) − R(20) = 650 − 461.29 + 440.32 − 251.61 = 377.42; the
    # freeze fee charged and given back. Expected 5000 − 650 (November) − 377.42 = 3972.58. Actual: 3912.58.
    assert balance(subscriber) == D("3972.58")
    assert ledger.verify() == []


@pytest.fixture
def turbo(admin):
    from abonent.catalog import actions as catalog

    return catalog.do_create_turbo(
        code="turbo-500", name="Турбо 500", download_kbps=512000, upload_kbps=256000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip


def test_a_reversed_turbo_is_taken_off_a_freeze_credit(monthly, subscribed, subscriber, admin, turbo, on):
    """A turbo bought and given back on 10 December (reversal: −50.00 over 10–11 December, no price), then a freeze
    the same day: ``charged_beyond`` counts the turbo's reversal as a credit already given for 10 December, so the
    freeze gives back 50.00 less."""
    monthly.turbos.add(turbo)
    noon = dt.datetime(2026, 12, 10, 12, 0)
    with on(noon):
        actions.do_activate_turbo(subscribed, turbo=turbo, acting_user=admin)
        bought = Charge.objects.get(subscription=subscribed, kind=ChargeKind.TURBO)
        actions.do_reverse_charge(bought, reason="did not work", acting_user=admin)
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)

    credit = Charge.objects.get(subscription=subscribed, kind=ChargeKind.PRORATION_CREDIT)
    # Expected: the freeze credits 10–31 December, R(10) = 461.29. Actual: 411.29.
    assert credit.amount == D("-461.29")


# --- a plan change after a run ahead winds the cursor back in the same charge cycle --------------------------------


def test_an_upgrade_after_a_run_ahead_gives_the_months_charged_ahead_away(
    subscribed, make_plan, monthly, subscriber, admin, on
):
    """``abonent billing run --date 2027-02-01`` on 10 December (a date in the future is accepted) charges January
    and February ahead, fees keyed (1 Jan, cycle 0) and (1 Feb, cycle 0). An upgrade the same day credits all of it
    and sets the cursor back to 1 January *without a new charge cycle*: the new plan's January and February fees
    collide with the credited ones on ``(subscription, period_start, cycle)`` and are dropped (ON CONFLICT DO
    NOTHING). Two months of service for nothing."""
    from abonent.billing.engine import BillingRun, run_billing

    faster = make_plan("internet-300", "930.00", name="Интернет-300")
    monthly.switchable_to.add(faster)
    with on(dec(10)):
        with pytest.raises(ValueError, match="ahead of today"):
            run_billing(dt.date(2027, 2, 1))  # refused now; the engine itself can still be driven ahead
        BillingRun(dt.date(2027, 2, 1)).run()
        actions.do_change_plan(subscribed, plan=faster, acting_user=admin)
    run_on(JAN_1)
    run_on(dt.date(2027, 2, 1))

    new_plan_fees = list(
        Charge.objects.filter(subscription=subscribed, kind=ChargeKind.FEE, price__plan=faster).values_list(
            "period_start", "amount"
        )
    )
    # Expected: January and February at the new plan, 930.00 each. Actual: [] (both dropped).
    assert new_plan_fees == [(JAN_1, D("930.00")), (dt.date(2027, 2, 1), D("930.00"))]
    # November 650 + December 650 − R(10) 461.29 + 10–31 December at 930 (round(930 × 22 / 31) = 660.00) + 2 × 930.
    # Expected 5000 − 3358.71 = 1641.29. Actual: 3501.29.
    assert balance(subscriber) == D("1641.29")
    assert ledger.verify() == []


def test_a_credit_over_several_periods_is_measured_on_its_first_period_only(
    make_plan, freeze_policy, subscriber, admin, on
):
    """After a run ahead (``--date`` in the future) a freeze credits eleven daily fees as *one* credit charge
    spanning 10–20 December. ``charge_base`` measures that credit on the period of its first day only (a daily
    plan's base is one day; a monthly one's the month of its first day), so from 11 December on it counts as
    nothing, and a termination during the freeze credits 12–20 December a second time."""
    from abonent.billing.engine import run_billing

    daily = make_plan("daily-310", "310.00", charge_mode="daily", freeze_policy=freeze_policy)  # 10.00 a day
    with on(NOV_1):
        actions.do_post_payment(subscriber, amount="1000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=daily, acting_user=admin)
    with on(dec(10)), pytest.raises(ValueError, match="ahead of today"):
        run_billing(dec(20))  # a run ahead of today is refused: what put a credit over several periods
    with on(dec(10)):
        run_billing(dec(10))
        actions.do_freeze_subscription(subscription, days=7, acting_user=admin)  # credit 10 December: 10.00
    with on(dec(12)):
        actions.do_terminate_subscription(subscription, acting_user=admin, reason="moved away")

    credits = sorted(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.PRORATION_CREDIT).values_list(
            "amount", flat=True
        )
    )
    assert credits == [D("-10.00")]
    # Served 1 November – 9 December: 310.00 + 9 × 10.00 = 400.00; the freeze fee 21.00.
    assert balance(subscriber) == D("1000.00") - D("400.00") - D("21.00")


# --- by-second proration into a daily plan: the morning is paid twice ----------------------------------------------


def test_a_by_second_upgrade_to_a_daily_plan_charges_the_morning_twice(make_plan, subscriber, admin, on):
    """The old plan prorates by seconds, so the upgrade at noon credits it from noon; the new plan is daily, and
    ``_new_plan_charge`` charges it for the whole day (``amount_for`` ignores ``at``), where a monthly target is
    prorated from the same instant. 00:00–12:00 of 11 December is paid at both plans."""
    by_second = make_plan("s-744", "744.00", proration_unit="seconds")  # 24.00 a day in December, 1.00 an hour
    daily = make_plan("daily-1240", "1240.00", charge_mode="daily")  # 40.00 a day in December
    by_second.switchable_to.add(daily)
    with on(NOV_1):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=by_second, acting_user=admin)
    run_on(DEC_1)
    with on(dt.datetime(2026, 12, 11, 12, 0)):
        actions.do_change_plan(subscription, plan=daily, acting_user=admin)

    credit = Charge.objects.get(subscription=subscription, kind=ChargeKind.PRORATION_CREDIT)
    charge = Charge.objects.get(subscription=subscription, kind=ChargeKind.PRORATION_CHARGE)
    assert credit.amount == D("-492.00")  # 20.5 days of 744/31 given back: by seconds from noon
    # Expected: 11 December from noon at the daily plan, 20.00 (or, if a daily plan charges whole days, the old
    # plan credited from midnight, 504.00). Actual: 40.00 with a credit from noon — 12:00 of the day paid twice.
    assert charge.amount == D("20.00")


# --- a subscription the run parks: an action on it writes the rest of its arrears off silently ---------------------


def test_a_termination_after_a_parking_catch_up_writes_off_the_last_days(make_plan, subscriber, admin, on):
    """More than MAX_PERIODS_PER_RUN (400) daily periods behind, the termination's catch-up charges 400 of them,
    parks the subscription and goes ahead: 7–9 December 2027 are never billed, and no error tells the operator."""
    from django.core.exceptions import ValidationError

    from abonent.billing import calculations as calc

    daily = make_plan("daily-310", "310.00", charge_mode="daily")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=daily, acting_user=admin)
    try:
        with on(dt.date(2027, 12, 10)):
            actions.do_terminate_subscription(subscription, acting_user=admin, reason="moved away")
    except ValidationError:
        return  # refused with a clear error: acceptable
    days = [
        dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range((dt.date(2027, 12, 10) - dt.date(2026, 11, 1)).days)
    ]
    owed = sum((calc.daily_split(D("310.00"), day) for day in days), D("0.00"))
    # Expected: 1 November 2026 – 9 December 2027 (404 days), 13 × 310.00 + 9 × 10.00 = 4,120.00. Actual: 4,090.00.
    assert owed == D("4120.00")
    assert charged_for(subscription, dt.date(2026, 11, 1), dt.date(2028, 1, 1)) == owed
