"""Property: for random calendars of individual prices and promotions, what a subscription's lines of a month
(fee, discount line, and a termination's credit lines) net to is the net price of the days it was in service:
the effective fee less the discount, each prorated as the run prorates, whatever the rules were."""

import datetime as dt
import os
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abonent.billing import actions, ledger
from abonent.billing.calculations import prorate
from abonent.billing.models import Charge
from abonent.billing.pricing import actions as pricing
from abonent.billing.pricing.models import Promotion
from abonent.billing.testing import run_on
from abonent.core import clock

D = Decimal
NOV, DEC, JAN, FEB = dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1), dt.date(2027, 2, 1)
LIST = D("650.00")

overrides = st.lists(
    st.tuples(st.sampled_from([NOV, DEC, JAN]), st.integers(0, 200_000).map(lambda k: D(k) / 100)),
    max_size=3,
    unique_by=lambda o: o[0],
)
promotions = st.lists(
    st.tuples(
        st.sampled_from(["percent", "amount"]),
        st.integers(1, 10_000).map(lambda k: D(k) / 100),
        st.sampled_from(["best", "cumulative"]),
        st.sampled_from([None, DEC, JAN]),  # the window's only day: a period starting on it
    ),
    max_size=3,
)


def _fee_on(day, prices):
    """The subscription's own price in force on ``day``: the one from the latest start not after it."""
    starts = [(start, fee) for start, fee in prices if start <= day]
    return max(starts)[1] if starts else LIST


def _discount(fee, promos, day):
    def amount(kind, value):
        off = (fee * value / 100).quantize(D("0.01"), rounding="ROUND_HALF_UP") if kind == "percent" else value
        return min(off, fee)

    applying = [(k, v, s) for k, v, s, window in promos if window is None or window == day]
    best = max((amount(k, v) for k, v, s in applying if s == "best"), default=D("0.00"))
    cumulative = sum((amount(k, v) for k, v, s in applying if s == "cumulative"), D("0.00"))
    return min(max(best, cumulative), fee)


@settings(
    max_examples=int(os.environ.get("ABONENT_PROPERTY_EXAMPLES", 8)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    prices=overrides,
    promos=promotions,
    start_day=st.integers(1, 30),
    end_day=st.integers(1, 31),
)
def test_a_month_nets_to_the_net_price(db, make_subscriber, monthly, admin, prices, promos, start_day, end_day):
    subscriber = make_subscriber(phone=None)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="100000.00", channel="test", external_id=f"p{subscriber.pk}")
        created = [
            pricing.do_create_promotion(
                name="p", kind=k, value=v, stacking=s, starts_on=w, ends_on=w, plans=[monthly], acting_user=admin
            )
            for k, v, s, w in promos
        ]
    started = dt.date(2026, 11, start_day)
    with clock.travel_to(started):
        subscription = actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)
        ordered = sorted(prices)
        for n, (start, fee) in enumerate(ordered):
            until = ordered[n + 1][0] - dt.timedelta(days=1) if n + 1 < len(ordered) else None
            pricing.do_set_price_override(
                subscription=subscription,
                plan=monthly,
                monthly_fee=fee,
                valid_from=start,
                valid_until=until,
                reason="r",
                acting_user=admin,
            )
    run_on(DEC)
    run_on(JAN)
    ended = dt.date(2027, 1, end_day)
    with clock.travel_to(ended):
        actions.do_terminate_subscription(subscription, acting_user=admin, reason="r")
    try:
        expected = {}
        for month, used_from, used_until in ((NOV, started, DEC), (DEC, DEC, JAN), (JAN, JAN, ended)):
            period_end = JAN if month == DEC else (DEC if month == NOV else FEB)
            # November was charged by the activation, before its prices were set: at the list price.
            fee = LIST if month == NOV else _fee_on(month, prices)
            off = _discount(fee, promos, month)
            period = (month, period_end)

            def worth(whole, period=period, used_from=used_from, used_until=used_until):
                return prorate(whole, period=period, used_from=used_from) - prorate(
                    whole, period=period, used_from=used_until
                )

            net = worth(fee) - worth(off)
            expected[month] = net if fee > off else D("0.00")  # a period discounted whole is not charged
        got = {}
        for month in (NOV, DEC, JAN):
            nxt = {NOV: DEC, DEC: JAN, JAN: FEB}[month]
            got[month] = sum(
                Charge.objects.filter(subscription=subscription, period_start__gte=month, period_start__lt=nxt)
                .exclude(kind="activation")
                .values_list("amount", flat=True),
                D("0.00"),
            )
        assert got == expected
        assert ledger.verify() == []
    finally:
        Promotion.objects.filter(pk__in=[p.pk for p in created]).update(is_active=False)
