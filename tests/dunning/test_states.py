"""The access-state machine over a movable clock: warned 3 days before the money runs out, restricted when it
has, suspended after the days restricted, restored by a payment at once; exemptions, freezes, staff states."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.billing.testing import run_on
from abonent.catalog.models import FreezePolicy, PromisedPaymentPolicy
from abonent.core import clock
from abonent.dunning import actions
from abonent.dunning.evaluation import evaluate, sweep
from abonent.dunning.models import AccessState, AccessStateKind, AccessTransition
from abonent.notifications.models import Event, Message

pytestmark = pytest.mark.django_db
State = AccessStateKind


@pytest.fixture
def monthly(make_plan):
    freeze = FreezePolicy.objects.create(name="F", min_days=7, max_days=60, yearly_quota_days=60, fee_per_day=0)
    promised = PromisedPaymentPolicy.objects.create(
        name="P", max_amount=Decimal("700.00"), days=3, max_debt=Decimal("700.00")
    )
    return make_plan(
        "internet-100", "650.00", name="Интернет-100", freeze_policy=freeze, promised_payment_policy=promised
    )


@pytest.fixture
def subscriber(make_subscriber, monthly, admin, settings):
    """700 ₽ paid on 1 November; November's 650 ₽ charged: 50 ₽ left for December's 650 ₽."""
    settings.ABONENT_QUIET_HOURS = ""
    customer = make_subscriber()
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(customer, amount="700.00", channel="test", external_id="opening")
        billing.do_activate_subscription(customer, plan=monthly, acting_user=admin)
    return customer


def state_of(subscriber):
    row = AccessState.objects.filter(subscriber=subscriber).first()
    return row.state if row else State.ACTIVE


def sweep_on(moment):
    with clock.travel_to(moment):
        return sweep()


def events_sent(subscriber):
    return list(
        Message.objects.filter(subscriber=subscriber, channel="sms").order_by("id").values_list("event", flat=True)
    )


def test_the_month_of_a_debtor(subscriber, admin, django_capture_on_commit_callbacks):
    sweep_on(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.ACTIVE
    sweep_on(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))  # 3 days to the charge of 1 December, 50 ₽ < 650 ₽
    assert state_of(subscriber) == State.WARNED
    assert events_sent(subscriber) == [Event.RUNOUT_SOON]
    sweep_on(dt.datetime(2026, 11, 28, 18, tzinfo=dt.UTC))
    assert events_sent(subscriber) == [Event.RUNOUT_SOON]  # once per level
    sweep_on(dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC))
    assert events_sent(subscriber) == [Event.RUNOUT_SOON, Event.RUNOUT_SOON]  # 1 day left
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    state = AccessState.objects.get(subscriber=subscriber)
    assert (state.state, state.owed) == (State.RESTRICTED, Decimal("600.00"))
    assert events_sent(subscriber)[-1] == Event.RESTRICTED
    sweep_on(dt.datetime(2026, 12, 14, 12, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.RESTRICTED
    sweep_on(dt.datetime(2026, 12, 15, 7, tzinfo=dt.UTC))  # 14 days restricted
    assert state_of(subscriber) == State.SUSPENDED
    assert events_sent(subscriber)[-1] == Event.SUSPENDED
    with (
        clock.travel_to(dt.datetime(2026, 12, 16, 10, tzinfo=dt.UTC)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        billing.do_post_payment(subscriber, amount="600.00", channel="test", external_id="debt")
    assert state_of(subscriber) == State.ACTIVE  # 0 ₽, paid up to 1 January: 16 days left
    assert events_sent(subscriber)[-1] == Event.RESTORED
    path = list(
        AccessTransition.objects.filter(subscriber=subscriber).order_by("at", "id").values_list("to_state", flat=True)
    )
    assert path == [State.WARNED, State.RESTRICTED, State.SUSPENDED, State.ACTIVE]


def test_a_second_sweep_writes_nothing(subscriber):
    run_on(dt.date(2026, 12, 1))
    first = sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    again = sweep_on(dt.datetime(2026, 12, 1, 6, 5, tzinfo=dt.UTC))
    assert first["moved"] == 1 and again == {"subscribers": 1, "written": 0, "moved": 0}


def test_an_exemption_stops_at_warned_and_its_end_restricts(subscriber, admin):
    run_on(dt.date(2026, 12, 1))
    with clock.travel_to(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)):
        actions.do_create_exemption(
            subscriber=subscriber, reason="Больница", expires_on=dt.date(2026, 12, 10), acting_user=admin
        )
    assert state_of(subscriber) == State.WARNED
    sweep_on(dt.datetime(2026, 12, 10, 12, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.WARNED
    sweep_on(dt.datetime(2026, 12, 11, 12, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.RESTRICTED


def test_an_operators_block_survives_money_and_its_lifting_re_evaluates(subscriber, admin):
    with clock.travel_to(dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC)):
        actions.do_block_access(subscriber, acting_user=admin, reason="Порча оборудования")
        billing.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="big")
        evaluate([subscriber.pk])
        assert state_of(subscriber) == State.BLOCKED
        sweep()
        assert state_of(subscriber) == State.BLOCKED
        actions.do_unblock_access(subscriber, acting_user=admin, reason="Разобрались")
    assert state_of(subscriber) == State.ACTIVE


def test_a_frozen_subscriber_is_not_dunned(subscriber, admin):
    subscription = subscriber.subscriptions.get()
    with clock.travel_to(dt.date(2026, 11, 26)):
        billing.do_freeze_subscription(subscription, starts_on=dt.date(2026, 11, 26), days=24, acting_user=admin)
    run_on(dt.date(2026, 11, 26))
    sweep_on(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.FROZEN
