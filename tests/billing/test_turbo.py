"""Turbo: a speed boost bought from the balance for a few hours, charged once per purchase, finished on time."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from abonent.billing import actions, selectors
from abonent.billing.ledger import verify
from abonent.billing.models import Charge, ChargeKind, LedgerTransaction, TurboActivation, TurboStatus
from abonent.billing.testing import balance
from abonent.catalog import actions as catalog
from abonent.core import clock

D = Decimal
NOON = timezone.make_aware(dt.datetime(2026, 11, 10, 12, 0))


@pytest.fixture
def turbo(admin):
    return catalog.do_create_turbo(
        code="turbo-500", name="Турбо 500", download_kbps=512000, upload_kbps=256000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip


@pytest.fixture
def subscription(make_plan, subscriber, admin, turbo):
    plan = make_plan("internet-100", "650.00", download_kbps=102400, upload_kbps=102400, turbos=[turbo])
    with clock.travel_to(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        actions.do_post_payment(subscriber, amount="700.00", channel="cash", external_id="1")
    return subscription


def turbo_charges(subscription):
    return list(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.TURBO).values_list("amount", flat=True)
    )


def test_a_turbo_is_charged_once_and_keeps_the_terms_it_was_bought_with(subscription, subscriber, turbo, admin):
    assert balance(subscriber) == D("50.00")
    with clock.travel_to(NOON):
        bought = actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    assert (bought.starts_at, bought.ends_at) == (NOON, NOON + dt.timedelta(hours=3))
    assert (bought.download_kbps, bought.upload_kbps, bought.price, bought.status) == (
        512000,
        256000,
        D("50.00"),
        "active",
    )
    assert balance(subscriber) == D("0.00")
    assert turbo_charges(subscription) == [D("50.00")]
    charge = Charge.objects.get(kind=ChargeKind.TURBO)
    assert (charge.event_id, charge.period_start) == (bought.event_id, dt.date(2026, 11, 10))
    assert charge.transaction.kind == "turbo"
    # Editing the option later changes later purchases only.
    catalog.do_update_turbo(turbo, acting_user=admin, price="80.00", download_kbps=1024000)
    bought.refresh_from_db()
    assert (bought.download_kbps, bought.price) == (512000, D("50.00"))
    assert verify() == []


def test_a_second_turbo_while_one_is_on_writes_nothing(subscription, subscriber, turbo, admin):
    actions.do_post_payment(subscriber, amount="500.00", channel="cash", external_id="2")
    with clock.travel_to(NOON):
        actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    before = (balance(subscriber), LedgerTransaction.objects.count(), TurboActivation.objects.count())
    with clock.travel_to(NOON + dt.timedelta(hours=2, minutes=59)), pytest.raises(ValidationError) as already:
        actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    assert already.value.code == "turbo_already_on"
    assert (balance(subscriber), LedgerTransaction.objects.count(), TurboActivation.objects.count()) == before


def test_a_turbo_needs_the_money_an_active_subscription_and_an_option_of_the_plan(
    subscription, subscriber, turbo, admin, make_plan
):
    actions.do_adjust_balance(subscriber, amount="-0.01", reason="leave 49.99", acting_user=admin)
    before = (balance(subscriber), LedgerTransaction.objects.count())
    with clock.travel_to(NOON), pytest.raises(ValidationError) as poor:
        actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    assert poor.value.code == "insufficient_funds"
    other = catalog.do_create_turbo(
        code="other", name="Other", download_kbps=1, upload_kbps=1, hours=1, price="0", acting_user=admin
    )
    with clock.travel_to(NOON), pytest.raises(ValidationError) as foreign:
        actions.do_activate_turbo(subscription, turbo=other, acting_user=admin)
    assert foreign.value.error_dict["turbo"][0].code == "turbo_not_offered"
    catalog.do_update_turbo(turbo, acting_user=admin, is_active=False)
    turbo.refresh_from_db()
    actions.do_post_payment(subscriber, amount="100.00", channel="cash", external_id="2")
    with clock.travel_to(NOON), pytest.raises(ValidationError) as withdrawn:
        actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    assert withdrawn.value.error_dict["turbo"][0].code == "turbo_not_offered"
    assert LedgerTransaction.objects.count() == before[1] + 1  # the payment only
    assert TurboActivation.objects.count() == 0


def test_a_frozen_subscription_gets_no_turbo(subscription, turbo, admin, freeze_policy):
    subscription.plan.freeze_policy = freeze_policy
    subscription.plan.save()
    with clock.travel_to(dt.date(2026, 11, 10)):
        actions.do_freeze_subscription(subscription, days=7, acting_user=admin)
    with clock.travel_to(NOON), pytest.raises(ValidationError) as frozen:
        actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    assert frozen.value.code == "subscription_not_active"
    assert turbo_charges(subscription) == []


def test_the_worker_finishes_a_turbo_when_its_time_is_up_and_another_can_be_bought(
    subscription, subscriber, turbo, admin, django_capture_on_commit_callbacks
):
    actions.do_post_payment(subscriber, amount="100.00", channel="cash", external_id="2")
    with clock.travel_to(NOON):
        bought = actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    with clock.travel_to(bought.ends_at - dt.timedelta(seconds=1)):
        assert actions.do_finish_due_turbos() == 0
        assert list(selectors.active_turbos([subscription.pk])) == [subscription.pk]
    with clock.travel_to(bought.ends_at):
        assert selectors.active_turbos([subscription.pk]) == {}
        with django_capture_on_commit_callbacks() as announced:
            assert actions.do_finish_due_turbos() == 1
        assert actions.do_finish_due_turbos() == 0  # run again: nothing more
    bought.refresh_from_db()
    assert (bought.status, bought.ended_at) == (TurboStatus.FINISHED, bought.ends_at)
    assert len(announced) == 1  # subscription.turbo_ended, once
    # A purchase after the end, before the worker got there, finishes the old one itself.
    with clock.travel_to(NOON + dt.timedelta(hours=4)):
        second = actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    with clock.travel_to(second.ends_at + dt.timedelta(minutes=5)):
        third = actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    second.refresh_from_db()
    assert (second.status, second.ended_at) == (TurboStatus.FINISHED, second.ends_at)
    assert third.status == TurboStatus.ACTIVE
    assert turbo_charges(subscription) == [D("50.00")] * 3
    assert balance(subscriber) == D("0.00")
    assert verify() == []


def test_staff_end_a_turbo_early_without_a_refund(subscription, subscriber, turbo, admin):
    with clock.travel_to(NOON):
        actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    with clock.travel_to(NOON + dt.timedelta(hours=1)):
        ended = actions.do_end_turbo(subscription, acting_user=admin, reason="wrong subscriber")
        with pytest.raises(ValidationError) as again:
            actions.do_end_turbo(subscription, acting_user=admin)
        assert actions.do_finish_due_turbos() == 0
    assert again.value.code == "turbo_not_active"
    assert (ended.status, ended.ended_at) == (TurboStatus.ENDED_EARLY, NOON + dt.timedelta(hours=1))
    assert balance(subscriber) == D("0.00")


@pytest.mark.parametrize("end", ["freeze", "terminate"])
def test_a_freeze_or_a_termination_ends_the_turbo(subscription, subscriber, turbo, admin, freeze_policy, end):
    subscription.plan.freeze_policy = freeze_policy
    subscription.plan.save()
    actions.do_post_payment(subscriber, amount="100.00", channel="cash", external_id="2")
    with clock.travel_to(NOON):
        bought = actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    with clock.travel_to(NOON + dt.timedelta(hours=1)):
        if end == "freeze":
            actions.do_freeze_subscription(subscription, days=7, acting_user=admin)
        else:
            actions.do_terminate_subscription(subscription, reason="moving", acting_user=admin)
    bought.refresh_from_db()
    assert (bought.status, bought.ended_at) == (TurboStatus.ENDED_EARLY, NOON + dt.timedelta(hours=1))


@pytest.mark.django_db(transaction=True)
def test_two_purchases_at_once_charge_once(make_plan, make_subscriber, admin):
    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once need PostgreSQL")
    turbo = catalog.do_create_turbo(
        code="t", name="T", download_kbps=512000, upload_kbps=256000, hours=3, price="50.00", acting_user=admin
    )
    subscriber = make_subscriber()
    plan = make_plan("internet-100", "650.00", turbos=[turbo])
    subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    actions.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="1")
    before = balance(subscriber)
    start = threading.Barrier(2)
    outcomes = []

    def buy():
        try:
            start.wait()
            actions.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
            outcomes.append("bought")
        except ValidationError as exc:
            outcomes.append(exc.code)
        except Exception as exc:  # anything else is a failure to see, not a missing outcome
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["bought", "turbo_already_on"]
    assert turbo_charges(subscription) == [D("50.00")]
    assert balance(subscriber) == before - D("50.00")
    assert verify() == []


def test_an_option_without_speed_or_hours_is_refused_with_field_codes(admin):
    with pytest.raises(ValidationError) as bad:
        catalog.do_create_turbo(
            code="bad", name="Bad", download_kbps=0, upload_kbps=1000, hours=0, price="-1", acting_user=admin
        )
    assert {field: [e.code for e in errors] for field, errors in bad.value.error_dict.items()} == {
        "price": ["amount_negative"]
    }
    with pytest.raises(ValidationError) as bad:
        catalog.do_create_turbo(
            code="bad", name="Bad", download_kbps=0, upload_kbps=1000, hours=0, price="1", acting_user=admin
        )
    codes = {field: [e.code for e in errors] for field, errors in bad.value.error_dict.items()}
    assert codes["download_kbps"] == ["min_value"] and codes["hours"] == ["min_value"]
