"""Individual and group prices, promotions and bundles in the billing run, in proration and in previews
(docs/billing-pricing.md). Exact amounts, ledger postings and ``ledger verify``; both engines."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from abonent.billing import actions, ledger
from abonent.billing.models import Charge, ChargeKind, LedgerAccount, Posting
from abonent.billing.pricing import actions as pricing
from abonent.billing.pricing.selectors import price_view
from abonent.billing.selectors import preview_plan_change
from abonent.billing.testing import balance, run_on
from abonent.catalog import actions as catalog
from abonent.subscribers.models import SubscriberGroup

D = Decimal
NOV, DEC, JAN, FEB, MAR = (
    dt.date(2026, 11, 1),
    dt.date(2026, 12, 1),
    dt.date(2027, 1, 1),
    dt.date(2027, 2, 1),
    dt.date(2027, 3, 1),
)


def lines(subscription, start, kind=None):
    rows = Charge.objects.filter(subscription=subscription, period_start=start, event__isnull=True)
    if kind:
        rows = rows.filter(kind=kind)
    return sorted((c.kind, c.amount) for c in rows)


def revenue(service) -> Decimal:
    account = ledger.revenue_account(service)
    return sum(Posting.objects.filter(account=account).values_list("amount", flat=True), D("0.00"))


@pytest.fixture
def paid(subscriber, on):
    with on(NOV):
        actions.do_post_payment(subscriber, amount="10000.00", channel="test", external_id="opening")
    return subscriber


@pytest.fixture
def iptv(admin):
    return catalog.do_create_service(code="iptv", name="ТВ", kind="iptv", acting_user=admin)


@pytest.fixture
def tv(make_plan, iptv):
    return make_plan("tv-100", "350.00", name="ТВ-100", service=iptv)


def activate(subscriber, plan, admin, on, day=NOV):
    with on(day):
        return actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)


def test_seasonal_twenty_percent_on_a_bundle(paid, monthly, tv, admin, on):
    """The issue's scenario: internet 650 + TV 350 bundled for 800 (shares by list price: 520 + 280), and a
    seasonal 20 % off the bundle in December: each service's fee and discount line, revenue per service, and the
    ledger balanced."""
    with on(NOV):
        bundle = pricing.do_create_bundle(
            name="Интернет+ТВ", plans=[monthly, tv], total="800.00", valid_from=NOV, acting_user=admin
        )
        pricing.do_create_promotion(
            name="Зима −20 %",
            kind="percent",
            value="20",
            bundle=bundle,
            starts_on=DEC,
            ends_on=dt.date(2026, 12, 31),
            acting_user=admin,
        )
    assert [(i.plan_id, i.share) for i in bundle.items.order_by("id")] == [
        (monthly.pk, D("520.00")),
        (tv.pk, D("280.00")),
    ]
    net = activate(paid, monthly, admin, on)
    box = activate(paid, tv, admin, on)
    # November: internet was charged before TV made the bundle, at its list price; TV at its share.
    assert lines(net, NOV) == [("fee", D("650.00"))]
    assert lines(box, NOV) == [("fee", D("280.00"))]
    internet_before, tv_before = revenue(monthly.service), revenue(tv.service)
    run_on(DEC)
    assert lines(net, DEC) == [("discount", D("-104.00")), ("fee", D("520.00"))]
    assert lines(box, DEC) == [("discount", D("-56.00")), ("fee", D("280.00"))]
    assert revenue(monthly.service) - internet_before == D("416.00")
    assert revenue(tv.service) - tv_before == D("224.00")
    assert balance(paid) == D("10000.00") - D("650.00") - D("280.00") - D("640.00")
    run_on(JAN)  # the season is over: the bundle price, no discount
    assert lines(net, JAN) == [("fee", D("520.00"))]
    assert lines(box, JAN) == [("fee", D("280.00"))]
    run_on(JAN)  # twice: once
    assert Charge.objects.filter(subscription__in=[net, box], period_start=JAN).count() == 2
    assert ledger.verify() == []
    view = price_view(net, day=DEC)
    assert (view.source, view.fee, view.discount, view.net) == ("bundle", D("520.00"), D("104.00"), D("416.00"))


def test_individual_price_in_the_run_and_its_freeze_credit(paid, monthly, admin, on):
    subscription = activate(paid, monthly, admin, on)
    with on(NOV):
        pricing.do_set_price_override(
            subscription=subscription,
            plan=monthly,
            monthly_fee="500.00",
            valid_from=DEC,
            reason="Договор 17",
            acting_user=admin,
        )
    run_on(DEC)
    fee = Charge.objects.get(subscription=subscription, period_start=DEC, kind=ChargeKind.FEE)
    assert (fee.amount, fee.base_fee) == (D("500.00"), D("500.00"))
    assert price_view(subscription, day=DEC).source == "subscription"
    before = balance(paid)
    with on(dt.date(2026, 12, 11)):
        actions.do_freeze_subscription(subscription, days=10, acting_user=admin)
    # 21 of December's 31 days given back at the price charged (500), not the list price (650); the freeze fee 30.
    assert balance(paid) - before == D("338.71") - D("30.00")
    assert ledger.verify() == []


def test_discount_given_back_in_proportion_on_freeze(paid, monthly, admin, on):
    with on(NOV):
        pricing.do_create_promotion(name="−20 %", kind="percent", value="20", plans=[monthly], acting_user=admin)
    subscription = activate(paid, monthly, admin, on)
    assert lines(subscription, NOV) == [("discount", D("-130.00")), ("fee", D("650.00"))]
    run_on(DEC)
    before = balance(paid)
    with on(dt.date(2026, 12, 11)):
        actions.do_freeze_subscription(subscription, days=10, acting_user=admin)
    # Net credit = what was paid for the 21 days: 440.32 of the fee less 88.06 of its discount.
    assert balance(paid) - before == D("440.32") - D("88.06") - D("30.00")
    credit = Charge.objects.filter(subscription=subscription, event__isnull=False, kind=ChargeKind.DISCOUNT).get()
    assert credit.amount == D("88.06")
    assert ledger.verify() == []


def test_plan_change_credits_what_was_charged(paid, monthly, make_plan, admin, on):
    fast = make_plan("internet-500", "900.00", name="Интернет-500")
    monthly.switchable_to.add(fast)
    subscription = activate(paid, monthly, admin, on)
    with on(NOV):
        pricing.do_set_price_override(
            subscription=subscription,
            plan=monthly,
            monthly_fee="500.00",
            valid_from=DEC,
            reason="Договор 17",
            acting_user=admin,
        )
        pricing.do_set_price_override(
            subscription=subscription,
            plan=fast,
            monthly_fee="700.00",
            valid_from=DEC,
            reason="Договор 17",
            acting_user=admin,
        )
    run_on(DEC)
    with on(dt.date(2026, 12, 11)):
        subscription.refresh_from_db()
        preview = preview_plan_change(subscription, fast)
        assert (preview.credit, preview.charge) == (D("338.71"), D("474.19"))  # 500·21/31, 700·21/31
        before = balance(paid)
        actions.do_change_plan(subscription, plan=fast, acting_user=admin)
    assert before - balance(paid) == D("474.19") - D("338.71")
    run_on(JAN)
    assert lines(subscription, JAN) == [("fee", D("700.00"))]
    # Terminated mid-January: the new plan's own price is what is given back.
    before = balance(paid)
    with on(dt.date(2027, 1, 21)):
        actions.do_terminate_subscription(subscription, acting_user=admin, reason="переезд")
    assert balance(paid) - before == D("248.39")  # 700·11/31
    assert ledger.verify() == []


def test_group_price_lowest_of_several_and_precedence(paid, monthly, admin, on, make_subscriber):
    vip, school = SubscriberGroup.objects.create(name="VIP"), SubscriberGroup.objects.create(name="Школа")
    paid.groups.add(vip, school)
    with on(NOV):
        pricing.do_set_price_override(
            group=vip, plan=monthly, monthly_fee="450.00", valid_from=NOV, reason="VIP", acting_user=admin
        )
        pricing.do_set_price_override(
            group=school, plan=monthly, monthly_fee="400.00", valid_from=NOV, reason="Школы", acting_user=admin
        )
    subscription = activate(paid, monthly, admin, on)
    assert lines(subscription, NOV) == [("fee", D("400.00"))]
    with on(NOV):
        pricing.do_set_price_override(
            subscription=subscription,
            plan=monthly,
            monthly_fee="420.00",
            valid_from=DEC,
            valid_until=dt.date(2026, 12, 31),
            reason="Акт сверки",
            acting_user=admin,
        )
    run_on(DEC)
    assert lines(subscription, DEC) == [("fee", D("420.00"))]  # its own price beats the groups'
    run_on(JAN)
    assert lines(subscription, JAN) == [("fee", D("400.00"))]  # its own ended: the group's again
    other = make_subscriber(last_name="Петров", phone="+79160000001")
    with on(NOV):
        actions.do_post_payment(other, amount="1000.00", channel="test", external_id="other")
    stranger = activate(other, monthly, admin, on)
    assert lines(stranger, NOV) == [("fee", D("650.00"))]  # not in a group: the list price
    assert ledger.verify() == []


def test_first_three_months_then_full_price(paid, monthly, admin, on):
    with on(NOV):
        pricing.do_create_promotion(
            name="Три месяца −50 %", kind="percent", value="50", first_months=3, acting_user=admin
        )
    with on(dt.date(2026, 11, 16)):
        subscription = actions.do_activate_subscription(paid, plan=monthly, acting_user=admin)
    # 15 of 30 days of November: 325.00, half of it off (the whole period's 325 prorated: 162.50).
    assert lines(subscription, dt.date(2026, 11, 16)) == [("discount", D("-162.50")), ("fee", D("325.00"))]
    for day in (DEC, JAN):
        run_on(day)
        assert lines(subscription, day) == [("discount", D("-325.00")), ("fee", D("650.00"))]
    run_on(FEB)  # the first three months end on 16 February: February's period starts before that
    assert lines(subscription, FEB) == [("discount", D("-325.00")), ("fee", D("650.00"))]
    run_on(MAR)
    assert lines(subscription, MAR) == [("fee", D("650.00"))]
    assert ledger.verify() == []


@pytest.mark.parametrize(
    ("stacking", "expected"),
    [("best", D("-130.00")), ("cumulative", D("-230.00"))],
)
def test_best_of_versus_cumulative(paid, monthly, admin, on, stacking, expected):
    """20 % (130) and 100 ₽ off: best-of gives the larger alone, cumulative both."""
    with on(NOV):
        pricing.do_create_promotion(name="−20 %", kind="percent", value="20", stacking=stacking, acting_user=admin)
        pricing.do_create_promotion(name="−100", kind="amount", value="100", stacking=stacking, acting_user=admin)
    subscription = activate(paid, monthly, admin, on)
    assert lines(subscription, NOV, ChargeKind.DISCOUNT) == [("discount", expected)]
    assert balance(paid) == D("10000.00") - D("650.00") - expected


def test_discount_never_makes_a_fee_negative_and_a_free_period_is_not_charged(paid, monthly, admin, on):
    with on(NOV):
        pricing.do_create_promotion(name="−1000", kind="amount", value="1000", acting_user=admin)
    subscription = activate(paid, monthly, admin, on)
    assert lines(subscription, NOV) == []
    assert balance(paid) == D("10000.00")
    assert LedgerAccount.objects.get(subscriber=paid).balance == D("10000.00")
    assert ledger.verify() == []


def test_reversal_of_a_discounted_fee_gives_back_what_was_paid(paid, monthly, admin, on):
    with on(NOV):
        pricing.do_create_promotion(name="−20 %", kind="percent", value="20", acting_user=admin)
    subscription = activate(paid, monthly, admin, on)
    fee = Charge.objects.get(subscription=subscription, kind=ChargeKind.FEE)
    before = balance(paid)
    with on(DEC):
        actions.do_reverse_charge(fee, reason="авария", acting_user=admin)
    assert balance(paid) - before == D("520.00")
    assert ledger.verify() == []


# --- bad input ---------------------------------------------------------------------------------------


def test_bad_prices_and_promotions_are_refused_with_codes(paid, monthly, admin, on):
    subscription = activate(paid, monthly, admin, on)

    def code(call, **kw):
        with pytest.raises(ValidationError) as info:
            call(**kw)
        return {f: [e.code for e in errors] for f, errors in info.value.error_dict.items()}

    base = {"subscription": subscription, "plan": monthly, "valid_from": DEC, "reason": "x", "acting_user": admin}
    with on(NOV):
        assert code(pricing.do_set_price_override, **{**base, "monthly_fee": "-1"}) == {
            "monthly_fee": ["amount_negative"]
        }
        assert code(pricing.do_set_price_override, **{**base, "monthly_fee": "100000000000"}) == {
            "monthly_fee": ["amount_too_large"]
        }
        assert code(pricing.do_set_price_override, **{**base, "monthly_fee": "1", "valid_until": NOV}) == {
            "valid_until": ["dates_reversed"]
        }
        assert code(pricing.do_set_price_override, **{**base, "monthly_fee": "1", "reason": " "}) == {
            "reason": ["required"]
        }
        pricing.do_set_price_override(**{**base, "monthly_fee": "500"})
        assert code(pricing.do_set_price_override, **{**base, "monthly_fee": "1", "valid_from": JAN}) == {
            "valid_from": ["overlapping"]
        }
        promo = {"name": "x", "acting_user": admin}
        assert code(pricing.do_create_promotion, **promo, kind="percent", value="100.01") == {
            "value": ["percent_too_large"]
        }
        assert code(pricing.do_create_promotion, **promo, kind="percent", value="0") == {
            "value": ["value_not_positive"]
        }
        assert code(pricing.do_create_promotion, **promo, kind="amount", value="-5") == {
            "value": ["value_not_positive"]
        }
    from abonent.billing.pricing.models import PriceOverride, Promotion

    assert PriceOverride.objects.count() == 1
    assert Promotion.objects.count() == 0


def test_fixed_daily_plan_at_an_individual_daily_fee(paid, make_plan, admin, on):
    daily = make_plan(
        "daily", "600.00", name="Суточный", charge_mode="daily", daily_pricing="fixed", daily_fee=D("20.00")
    )
    with on(NOV):
        pricing.do_create_promotion(name="−10 %", kind="percent", value="10", plans=[daily], acting_user=admin)
    subscription = activate(paid, daily, admin, on)
    with on(NOV):
        pricing.do_set_price_override(
            subscription=subscription,
            plan=daily,
            monthly_fee="450.00",
            daily_fee="15.00",
            valid_from=dt.date(2026, 11, 2),
            reason="Договор",
            acting_user=admin,
        )
    run_on(dt.date(2026, 11, 3))
    assert lines(subscription, NOV) == [("discount", D("-2.00")), ("fee", D("20.00"))]
    assert lines(subscription, dt.date(2026, 11, 2)) == [("discount", D("-1.50")), ("fee", D("15.00"))]
    assert lines(subscription, dt.date(2026, 11, 3)) == [("discount", D("-1.50")), ("fee", D("15.00"))]
    assert ledger.verify() == []
