"""Attack on pricing (individual/group prices, promotions, bundles): each test asserts the correct behaviour."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from abonent.billing import actions, ledger
from abonent.billing.models import Charge, ChargeKind
from abonent.billing.pricing import actions as pricing
from abonent.billing.pricing.models import PriceOverride
from abonent.billing.pricing.selectors import price_view
from abonent.billing.testing import run_on

D = Decimal
NOV, DEC, JAN = dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def lines(subscription, start):
    return sorted(
        (c.kind, c.amount)
        for c in Charge.objects.filter(subscription=subscription, period_start=start, event__isnull=True)
    )


@pytest.fixture
def paid(subscriber, on):
    with on(NOV):
        actions.do_post_payment(subscriber, amount="10000.00", channel="test", external_id="opening")
    return subscriber


def activate(subscriber, plan, admin, on, day=NOV):
    with on(day):
        return actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)


def test_upgrade_to_a_time_plan_with_an_override_takes_no_fee(paid, monthly, make_plan, admin, on):
    """A time plan has no recurring fee (the run charges it nothing, its time online is rated). An individual
    "monthly fee" of a time plan must not be charged by a plan change as a fee for the rest of the month."""
    wifi = make_plan("wifi-minute", "0.00", name="Wi-Fi", charge_mode="time", time_unit="minute", unit_price=D("1.00"))
    monthly.switchable_to.add(wifi)
    subscription = activate(paid, monthly, admin, on)
    run_on(DEC)
    with on(DEC):
        # Refused now (a time plan has no fee to set a price of)...
        with pytest.raises(ValidationError) as refused:
            pricing.do_set_price_override(
                subscription=subscription,
                plan=wifi,
                monthly_fee="900.00",
                valid_from=DEC,
                reason="Д",
                acting_user=admin,
            )
        assert refused.value.error_dict["plan"][0].code == "plan_time_rated"
        # ...and one written before the refusal existed is charged by nothing.
        PriceOverride.objects.create(
            subscription=subscription, plan=wifi, monthly_fee=D("900.00"), valid_from=DEC, reason="Д", created_at=NOW
        )
        assert price_view(subscription, plan=wifi, day=DEC) is None
    with on(dt.date(2026, 12, 11)):
        subscription.refresh_from_db()
        actions.do_change_plan(subscription, plan=wifi, acting_user=admin)
    run_on(JAN)
    assert ledger.verify() == []
    taken = Charge.objects.filter(subscription=subscription, price__plan=wifi).values_list("kind", "amount")
    assert [row for row in taken if row[1] > 0] == []


def test_price_view_of_a_split_daily_plan_is_what_the_run_charges(paid, make_plan, admin, on):
    """A daily plan that splits its monthly fee by days: the price (card, API) is "a day's" fee, the run charges
    600/30 = 20.00 a day and a 50 ₽-a-day promotion makes it free; the view says fee 600, discount 50, net 550."""
    daily = make_plan("daily-split", "600.00", name="Суточный", charge_mode="daily", daily_pricing="split")
    with on(NOV):
        pricing.do_create_promotion(name="−50 ₽", kind="amount", value="50", plans=[daily], acting_user=admin)
    subscription = activate(paid, daily, admin, on)
    run_on(dt.date(2026, 11, 2))
    charged = sum(
        Charge.objects.filter(subscription=subscription, period_start=dt.date(2026, 11, 2)).values_list(
            "amount", flat=True
        ),
        D("0.00"),
    )
    view = price_view(subscription, day=dt.date(2026, 11, 2))
    assert view.net == charged


def test_override_daily_fee_of_a_split_daily_plan_is_what_the_run_charges(paid, make_plan, admin, on):
    daily = make_plan("daily-split", "600.00", name="Суточный", charge_mode="daily", daily_pricing="split")
    subscription = activate(paid, daily, admin, on)
    with on(NOV):
        # A daily fee of a plan that splits its monthly fee is refused (the run would never charge it)...
        with pytest.raises(ValidationError) as refused:
            pricing.do_set_price_override(
                subscription=subscription,
                plan=daily,
                monthly_fee="300.00",
                daily_fee="1.00",
                valid_from=dt.date(2026, 11, 2),
                reason="Договор",
                acting_user=admin,
            )
        assert refused.value.error_dict["daily_fee"][0].code == "daily_fee_not_used"
        # ...and one written before the refusal existed is shown as the run charges: 300/30 a day, not 1.00.
        PriceOverride.objects.create(
            subscription=subscription,
            plan=daily,
            monthly_fee=D("300.00"),
            daily_fee=D("1.00"),
            valid_from=dt.date(2026, 11, 2),
            reason="Договор",
            created_at=NOW,
        )
    run_on(dt.date(2026, 11, 2))
    fee = Charge.objects.get(subscription=subscription, period_start=dt.date(2026, 11, 2), kind=ChargeKind.FEE)
    assert fee.amount == D("10.00")
    assert price_view(subscription, day=dt.date(2026, 11, 2)).fee == fee.amount


def test_first_month_discount_survives_a_freeze_within_the_discounted_period(paid, monthly, admin, on):
    """Started 16 November with "first month −20 %": December (a period starting before 16 December) is discounted
    and charged net. Frozen 5–18 December and back on the 19th, the days 19–31 December are the same December
    period, yet the unfreeze charges them at the full fee: the freeze gave back 80 % of their price and took
    100 %, so the subscriber pays more for the same days for having frozen."""
    with on(NOV):
        pricing.do_create_promotion(
            name="Первый месяц −20 %", kind="percent", value="20", first_months=1, acting_user=admin
        )
    subscription = activate(paid, monthly, admin, on, day=dt.date(2026, 11, 16))
    run_on(DEC)
    assert lines(subscription, DEC) == [("discount", D("-130.00")), ("fee", D("650.00"))]
    with on(dt.date(2026, 12, 5)):
        actions.do_freeze_subscription(subscription, days=14, acting_user=admin)
    subscription.refresh_from_db()
    with on(dt.date(2026, 12, 19)):
        actions.do_unfreeze_subscription(subscription, acting_user=admin)
    assert ledger.verify() == []
    resumed = lines(subscription, dt.date(2026, 12, 19))
    # 650·13/31 = 272.58 of fee and 130·13/31 = 54.52 of discount, as December's other days.
    assert resumed == [("discount", D("-54.52")), ("fee", D("272.58"))]
