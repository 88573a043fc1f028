"""Money actions at the same time on PostgreSQL: two reversals of overlapping days, a run and an unfreeze (an attack
review tried them; they held, and these keep them holding)."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from abonent.billing import actions, ledger
from abonent.billing.engine import run_billing
from abonent.billing.models import Charge, ChargeKind, Subscription
from abonent.core import clock

D = Decimal
NOV_1, DEC_1 = dt.date(2026, 11, 1), dt.date(2026, 12, 1)


def together(*fns):
    barrier = threading.Barrier(len(fns))
    out = []

    def wrap(fn):
        try:
            barrier.wait(timeout=10)
            out.append(fn())
        except ValidationError as exc:
            out.append(exc.code if hasattr(exc, "code") else str(exc))
        except Exception as exc:
            out.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


@pytest.fixture
def monthly(make_plan, freeze_policy):
    return make_plan("internet-100", "650.00", freeze_policy=freeze_policy)


@pytest.mark.django_db(transaction=True)
def test_two_reversals_of_the_same_days_at_once(monthly, subscriber, admin):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL")
    with clock.travel_to(NOV_1):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="o")
        sub = actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)
    with clock.travel_to(DEC_1):
        run_billing(DEC_1)
    fee = Charge.objects.get(subscription=sub, kind=ChargeKind.FEE, period_start=DEC_1)

    def rev(first, until):
        def go():
            with clock.travel_to(dt.date(2026, 12, 20)):
                return actions.do_reverse_charge(
                    fee, reason="x", acting_user=admin, first_day=first, until=until
                ).amount

        return go

    out = together(rev(dt.date(2026, 12, 5), dt.date(2026, 12, 10)), rev(dt.date(2026, 12, 7), dt.date(2026, 12, 12)))
    assert sorted(map(str, out))[1] == "already_reversed", out
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_the_run_and_an_unfreeze_at_once(monthly, subscriber, admin):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL")
    with clock.travel_to(NOV_1):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="o")
        sub = actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)
    with clock.travel_to(dt.date(2026, 11, 10)):
        actions.do_freeze_subscription(sub, days=20, acting_user=admin)

    def unfreeze():
        with clock.travel_to(dt.date(2026, 12, 3)):
            return actions.do_unfreeze_subscription(Subscription.objects.get(pk=sub.pk), acting_user=admin).pk

    def run():
        with clock.travel_to(dt.date(2026, 12, 3)):
            return run_billing(dt.date(2026, 12, 3)).charges

    together(unfreeze, run)
    # Frozen 10–29 November (ran out on the 30th): 1–9 and 30 November, 1–31 December.
    dec = sum(Charge.objects.filter(subscription=sub, period_start__gte=DEC_1).values_list("amount", flat=True))
    assert dec == D("650.00")
    assert ledger.verify() == []
