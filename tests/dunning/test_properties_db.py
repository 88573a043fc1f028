"""Properties of access states over real money: Hypothesis draws a plan (monthly or daily, a few prices), an
opening payment, a credit limit, and a sequence of days with events (payments, freezes and unfreezes, promised
payments, exemptions and their revocation, an operator's block and its lifting, a new credit limit); every day's
billing run is made as the worker would. After each step the subscriber is evaluated, as after a balance change,
and swept, in an order Hypothesis chooses, and:

- (a) restricted or suspended exactly when balance + credit < 0 and no exemption, freeze or staff state applies;
- (b) a change of state wrote exactly one transition and at most one notice of each kind; no change, none;
- (c) evaluating again writes nothing (no transition, no notice, the state row untouched);
- (d) the sweep and ``evaluate`` agree: whichever runs second finds nothing to change (the sweep leaves most
  subscribers to SQL: this is what holds that shortcut to the rule);
- (e) the run-out date claims no more than the money pays: billing up to the day before it leaves the balance
  plus credit at or above zero;
- (f) suspended exactly when restricted for D days.

Each example runs in a transaction rolled back at its end.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abonent.billing import actions as billing
from abonent.billing.models import LedgerAccount, Subscription, SubscriptionStatus
from abonent.billing.testing import run_on
from abonent.catalog.models import FreezePolicy, PromisedPaymentPolicy
from abonent.core import clock
from abonent.dunning import actions as dunning
from abonent.dunning.evaluation import evaluate, sweep
from abonent.dunning.models import STAFF_STATES, AccessState, AccessStateKind, AccessTransition, Exemption
from abonent.notifications.models import Message

pytestmark = pytest.mark.django_db
D = Decimal
State = AccessStateKind
SUSPEND_DAYS = 14
settings.register_profile(
    "dunning-db", max_examples=int(os.environ.get("ABONENT_PROPERTY_EXAMPLES", 25)) // 2 + 3, deadline=None
)

PLANS = {
    "monthly-650": ("650.00", "monthly"),
    "monthly-399": ("399.00", "monthly"),
    "daily-650": ("650.00", "daily"),
    "daily-310": ("310.00", "daily"),
}
EVENTS = ["pay", "pay", "nothing", "freeze", "unfreeze", "promised", "exempt", "revoke", "block", "unblock", "credit"]


@pytest.fixture
def plans(make_plan):
    freeze = FreezePolicy.objects.create(name="F", min_days=1, max_days=60, yearly_quota_days=365, fee_per_day=0)
    promised = PromisedPaymentPolicy.objects.create(
        name="P", max_amount=D("500.00"), days=3, max_debt=D("2000.00"), once_per_month=False
    )
    return {
        code: make_plan(code, fee, charge_mode=mode, freeze_policy=freeze, promised_payment_policy=promised)
        for code, (fee, mode) in PLANS.items()
    }


@pytest.fixture
def customer(make_subscriber, settings):
    settings.ABONENT_QUIET_HOURS = ""
    settings.ABONENT_DUNNING_SUSPEND_DAYS = SUSPEND_DAYS
    return make_subscriber()


scenarios = st.tuples(
    st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2027, 12, 31)),  # the start
    st.sampled_from(sorted(PLANS)),
    st.integers(0, 2000).map(lambda r: D(r)),  # the opening payment, whole roubles
    st.sampled_from([D("0.00"), D("0.00"), D("300.00")]),  # credit limit
    st.lists(
        st.tuples(
            st.integers(0, 16),  # days since the previous step
            st.sampled_from(EVENTS),
            st.integers(1, 1500),  # an amount, or days
            st.booleans(),  # the sweep first, or the evaluation first
            st.integers(0, 20),  # the hour, UTC: the same day in Moscow, after its billing run
        ),
        min_size=1,
        max_size=8,
    ),
)


@settings(
    settings.get_profile("dunning-db"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
def test_access_follows_money_whatever_happens(plans, customer, admin, scenario):
    with transaction.atomic():
        _play(plans, customer, admin, *scenario)
        transaction.set_rollback(True)


def _play(plans, customer, admin, start, plan_code, opening, credit, steps):
    with clock.travel_to(start):
        if opening:
            billing.do_post_payment(customer, amount=opening, channel="test", external_id="opening")
        if credit:
            billing.do_set_credit_limit(customer, amount=credit, reason="p", acting_user=admin)
        subscription = billing.do_activate_subscription(customer, plan=plans[plan_code], acting_user=admin)
    day = start
    for number, (gap, event, amount, sweep_first, hour) in enumerate(steps):
        day += dt.timedelta(days=gap)
        moment = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
        run_on(day)
        with clock.travel_to(moment):
            _event(customer, subscription, admin, event, amount, number)
            _check_step(customer, moment, sweep_first)
    with clock.travel_to(moment):
        _check_runout(customer, subscription)


def _event(customer, subscription, admin, event, amount, number):
    subscription.refresh_from_db()
    try:
        if event == "pay":
            billing.do_post_payment(customer, amount=D(amount), channel="test", external_id=f"pay-{number}")
        elif event == "freeze" and subscription.status == SubscriptionStatus.ACTIVE:
            billing.do_freeze_subscription(subscription, days=1 + amount % 20, acting_user=admin)
        elif event == "unfreeze" and subscription.status == SubscriptionStatus.FROZEN:
            billing.do_unfreeze_subscription(subscription, acting_user=admin)
        elif event == "promised":
            billing.do_take_promised_payment(customer, acting_user=admin, amount=D(1 + amount % 500))
        elif event == "exempt":
            dunning.do_create_exemption(
                subscriber=customer, reason="Больница", expires_on=clock.today() + dt.timedelta(days=amount % 30),
                acting_user=admin,
            )  # fmt: skip
        elif event == "revoke":
            for exemption in Exemption.objects.filter(subscriber=customer, revoked_at__isnull=True):
                dunning.do_revoke_exemption(exemption, acting_user=admin, reason="p")
        elif event == "block":
            dunning.do_block_access(customer, acting_user=admin, reason="Порча оборудования")
        elif event == "unblock":
            dunning.do_unblock_access(customer, acting_user=admin, reason="Разобрались")
        elif event == "credit":
            billing.do_set_credit_limit(customer, amount=D(amount % 3 * 200), reason="p", acting_user=admin)
    except ValidationError:
        pass  # refused (not blocked, an open promise already, the freeze quota…): nothing happened


def _row(customer):
    row = AccessState.objects.filter(subscriber=customer).first()
    if row is None:
        return None
    return (row.state, row.since, row.restricted_since, row.runout_on, row.owed, row.exempt, row.reminded_for,
            row.reminded_days, row.evaluated_at)  # fmt: skip


def _state(customer) -> str:
    return AccessState.objects.filter(subscriber=customer).values_list("state", flat=True).first() or State.ACTIVE


def _check_step(customer, moment, sweep_first):
    before_state = _state(customer)
    transitions_before = AccessTransition.objects.filter(subscriber=customer).count()
    last_message = Message.objects.order_by("-id").values_list("id", flat=True).first() or 0

    first, second = (_sweep, _evaluate) if sweep_first else (_evaluate, _sweep)
    first(customer)
    after_state = _state(customer)
    written = _row(customer)

    # (b) one transition for a change, none without; at most one notice of each kind (one SMS address).
    transitions = AccessTransition.objects.filter(subscriber=customer).count() - transitions_before
    assert transitions == (1 if after_state != before_state else 0)
    new_messages = list(
        Message.objects.filter(subscriber=customer, id__gt=last_message).values_list("event", flat=True)
    )
    assert len(new_messages) == len(set(new_messages))
    if after_state == before_state:
        assert not {"restricted", "suspended", "restored"} & set(new_messages)

    # (d) the other path finds nothing to change, and (c) evaluating again writes nothing.
    assert second(customer) == 0
    assert evaluate([customer.pk]) == []
    assert _row(customer) == written
    assert AccessTransition.objects.filter(subscriber=customer).count() - transitions_before == transitions
    assert Message.objects.filter(subscriber=customer, id__gt=last_message).count() == len(new_messages)

    # (a) and (f) on what was written.
    account = LedgerAccount.objects.get(subscriber=customer)
    available = account.balance + account.credit_limit
    exempt = Exemption.objects.filter(
        subscriber=customer, revoked_at__isnull=True, starts_on__lte=clock.today(), expires_on__gte=clock.today()
    ).exists()
    statuses = set(Subscription.objects.filter(subscriber=customer).values_list("status", flat=True))
    frozen = SubscriptionStatus.FROZEN in statuses and SubscriptionStatus.ACTIVE not in statuses
    if after_state in STAFF_STATES:
        return
    assert (after_state in (State.RESTRICTED, State.SUSPENDED)) == (available < 0 and not exempt and not frozen)
    if after_state in (State.RESTRICTED, State.SUSPENDED):
        row = AccessState.objects.get(subscriber=customer)
        long_enough = moment - row.restricted_since >= dt.timedelta(days=SUSPEND_DAYS)
        assert (after_state == State.SUSPENDED) == long_enough


def _sweep(customer) -> int:
    return sweep()["written"]


def _evaluate(customer) -> int:
    before = _row(customer)
    moved = evaluate([customer.pk])
    return len(moved) or int(_row(customer) != before)


def _check_runout(customer, subscription):
    """(e): billing every day before the run-out date, with nothing else happening, leaves the money >= 0."""
    row = AccessState.objects.filter(subscriber=customer).first()
    subscription.refresh_from_db()
    if row is None or row.state not in (State.ACTIVE, State.WARNED) or row.runout_on is None:
        return
    if subscription.status != SubscriptionStatus.ACTIVE or row.exempt:
        return
    last_paid_day = row.runout_on - dt.timedelta(days=1)
    if last_paid_day > clock.today():
        run_on(last_paid_day)
    account = LedgerAccount.objects.get(subscriber=customer)
    assert account.balance + account.credit_limit >= 0, (row.runout_on, account.balance, account.credit_limit)
