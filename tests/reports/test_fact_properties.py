"""Property: whatever was charged and paid, in whatever order, and however often the rollup ran in between, the
summary tables equal the ledger to the kopeck (issue 19).

Hypothesis draws a calendar (a start day, the gaps between events) and a sequence of events for two subscribers of
two branches: activations, plan changes (forced or not), freezes and unfreezes, one-off services, manual
adjustments, charges given back, payments through several channels and their cancellations, billing runs on random
days, and rollups at random moments. After a last rollup the facts must equal an oracle that reads the ledger
directly, with its own definitions rather than the rollup's SQL:

- revenue from charges, per day (a charge's ``period_start``), service and charge kind: the charges themselves;
- revenue from the rest of the ledger, per day, service and transaction kind: the revenue postings of the
  transactions that have no charge rows (the rollup decides that by the transaction's kind; the oracle looks);
- revenue per branch: the revenue postings of each branch's subscribers;
- cash per day and channel: minus the postings on each channel's cash or clearing account;

and ``verify_facts`` and ``abonent reports verify`` must pass. CI runs a bounded number of examples; ``make
test-properties`` runs many more (ABONENT_PROPERTY_EXAMPLES).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from decimal import Decimal

import hypothesis
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from django.db.models import Exists, OuterRef, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abonent.billing import actions
from abonent.billing.models import (
    AccountKind,
    Charge,
    ChargeKind,
    Posting,
    Subscription,
    SubscriptionStatus,
)
from abonent.billing.testing import run_on
from abonent.catalog import actions as catalog_actions
from abonent.catalog.models import FreezePolicy
from abonent.core import clock
from abonent.payments.actions.intake import do_receive_payment
from abonent.payments.actions.refunds import do_cancel_payment
from abonent.reports import facts
from abonent.reports.models import PaymentFact, RevenueFact

D = Decimal
ZERO = D("0.00")

settings.register_profile(
    "facts", max_examples=int(os.environ.get("ABONENT_PROPERTY_EXAMPLES", 20)), deadline=None, derandomize=False
)

PLANS = {"monthly-650": ("650.00", "monthly"), "monthly-399": ("399.00", "monthly"), "daily-310": ("310.00", "daily")}
CHANNELS = ["bank", "cash", "agent:kiwi"]
EVENTS = [
    "activate",
    "change",
    "force change",
    "freeze",
    "unfreeze",
    "one-off",
    "adjust",
    "reverse",
    "pay",
    "cancel",
    "run",
    "rollup",
]


@st.composite
def scenarios(draw):
    start = draw(st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 12, 31)))
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 20),  # days after the previous step
                st.integers(0, 1),  # which subscriber
                st.sampled_from(EVENTS),
                st.sampled_from(sorted(PLANS)),
                st.integers(1, 5000),  # an amount, a day count, which payment or charge
            ),
            min_size=1,
            max_size=14,
        )
    )
    return start, steps


@pytest.fixture
def world(admin, internet, make_subscriber, other_branch):
    policy = FreezePolicy.objects.create(
        name="property", min_days=1, max_days=40, yearly_quota_days=366, fee_per_day=D("1.00")
    )
    plans = {}
    for code, (fee, mode) in PLANS.items():
        plans[code] = catalog_actions.do_create_plan(
            code=code,
            name=code,
            service=internet,
            monthly_fee=D(fee),
            valid_from=dt.date(2020, 1, 1),
            charge_mode=mode,
            freeze_policy=policy,
            acting_user=admin,
        )
    for plan in plans.values():
        plan.switchable_to.set([p for p in plans.values() if p.pk != plan.pk])
    installation = catalog_actions.do_create_service(
        code="installation", name="Подключение", kind="one_off", one_off_price=D("1500.00"), acting_user=admin
    )
    subscribers = [
        make_subscriber(phone="+79160000011"),
        make_subscriber(phone="+79160000012", branch_obj=other_branch),
    ]
    return {"plans": plans, "installation": installation, "subscribers": subscribers}


@settings(
    settings.get_profile("facts"), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(scenario=scenarios())
def test_the_facts_equal_the_ledger_whatever_happened(world, admin, scenario):
    start, steps = scenario
    with transaction.atomic():
        _play(world, admin, start, steps)
        transaction.set_rollback(True)


def _play(world, admin, start, steps):
    state = {"payments": [], "n": 0}
    day = start
    with clock.travel_to(start):
        for number, subscriber in enumerate(world["subscribers"]):
            # Enough on the account for a freeze's fee; channel and day are those of any payment.
            state["payments"].append(
                do_receive_payment(
                    channel="cash",
                    external_id=f"opening-{number}",
                    amount=D("3000.00"),
                    method="cash",
                    subscriber=subscriber,
                ).payment
            )
    for gap, who, event, plan, pick in steps:
        day += dt.timedelta(days=gap)
        subscriber = world["subscribers"][who]
        try:
            with transaction.atomic(), clock.travel_to(day):
                played = _event(world, admin, state, subscriber, day, event, plan, pick)
            hypothesis.event(f"{played}: done")
        except ValidationError as exc:
            # Refused (no subscription yet, frozen already, the same plan…): nothing was written.
            hypothesis.event(f"{event}: refused ({getattr(exc, 'code', None) or 'field'})")
    run_on(day + dt.timedelta(days=1))
    facts.do_roll_up_facts(wait_seconds=5)

    assert _revenue_facts("c") == _charges(), "revenue from charges"
    assert _revenue_facts("t") == _other_revenue(), "revenue without charges"
    assert _by_branch(RevenueFact) == _revenue_by_branch(), "revenue per branch"
    assert _cash_facts() == _cash(), "cash per day and channel"
    assert facts.verify_facts().ok
    call_command("reports", "verify")  # exits 1 on any difference


def _live(subscriber) -> Subscription | None:
    return (
        Subscription.objects.filter(subscriber=subscriber)
        .exclude(status=SubscriptionStatus.TERMINATED)
        .order_by("-id")
        .first()
    )


def _event(world, admin, state, subscriber, day, event, plan, pick) -> str:
    """Play one event. One that needs what is not there yet (a subscription, a payment, a fee) makes it instead, so
    that short sequences reach the interesting states."""
    plans, subscription = world["plans"], _live(subscriber)
    state["n"] += 1
    needs_subscription = ("change", "force change", "freeze", "unfreeze")
    if event == "activate" or (event in needs_subscription and subscription is None):
        if subscription is not None:
            return "nothing to do"
        actions.do_activate_subscription(subscriber, plan=plans[plan], acting_user=admin)
        return "activate"
    fees = Charge.objects.filter(subscription__subscriber=subscriber, kind=ChargeKind.FEE).order_by("id")
    if event == "reverse" and not fees.exists():
        event = "run"
    if event == "cancel" and not state["payments"]:
        event = "pay"
    if event in ("change", "force change"):
        actions.do_change_plan(subscription, plan=plans[plan], acting_user=admin, force=event == "force change")
    elif event == "freeze":
        actions.do_freeze_subscription(subscription, days=7 + pick % 30, acting_user=admin)
    elif event == "unfreeze":
        actions.do_unfreeze_subscription(subscription, acting_user=admin)
    elif event == "one-off":
        actions.do_charge_one_off(
            subscriber, service=world["installation"], acting_user=admin, amount=D(pick) / 10 + 100
        )
    elif event == "adjust":
        amount = (D(pick) / 100) * (1 if pick % 2 else -1)
        actions.do_adjust_balance(subscriber, amount=amount, reason="property", acting_user=admin)
    elif event == "reverse":
        charges = list(fees)
        charge = charges[pick % len(charges)]
        first = charge.period_start + dt.timedelta(days=pick % (charge.period_end - charge.period_start).days)
        actions.do_reverse_charge(charge, reason="property", acting_user=admin, first_day=first)
    elif event == "pay":
        intake = do_receive_payment(
            channel=CHANNELS[pick % len(CHANNELS)],
            external_id=f"p-{state['n']}",
            amount=D(pick) / 4 + 1,
            method="bank",
            subscriber=subscriber,
        )
        state["payments"].append(intake.payment)
    elif event == "cancel":
        payment = state["payments"].pop(pick % len(state["payments"]))
        do_cancel_payment(payment, reason="property", acting_user=admin)
    elif event == "run":
        run_on(day)
    elif event == "rollup":
        facts.do_roll_up_facts(wait_seconds=5)
    return event


# --- the oracle: the ledger read directly -------------------------------------------------------------------------


def _nonzero(sums: dict) -> dict:
    return {key: value for key, value in sums.items() if value != (ZERO, 0) and value != ZERO}


def _revenue_facts(source: str) -> dict:
    sums: dict = defaultdict(lambda: (ZERO, 0))
    for row in RevenueFact.objects.filter(source=source).values("day", "service_id", "kind", "amount", "count"):
        key = (row["day"], row["service_id"], row["kind"])
        amount, count = sums[key]
        sums[key] = (amount + row["amount"], count + row["count"])
    return _nonzero(sums)


def _charges() -> dict:
    sums: dict = defaultdict(lambda: (ZERO, 0))
    for charge in Charge.objects.values("period_start", "subscription__service_id", "kind", "amount"):
        key = (charge["period_start"], charge["subscription__service_id"], charge["kind"])
        amount, count = sums[key]
        sums[key] = (amount + charge["amount"], count + 1)
    return _nonzero(sums)


def _revenue_postings():
    return Posting.objects.filter(account__kind=AccountKind.REVENUE)


def _other_revenue() -> dict:
    sums: dict = defaultdict(lambda: (ZERO, 0))
    seen: dict = defaultdict(set)
    carries_charges = Exists(Charge.objects.filter(transaction_id=OuterRef("transaction_id")))
    for row in (
        _revenue_postings()
        .annotate(with_charges=carries_charges)
        .filter(with_charges=False)
        .values("transaction_id", "transaction__effective_date", "account__service_id", "transaction__kind", "amount")
    ):
        key = (row["transaction__effective_date"], row["account__service_id"] or 0, row["transaction__kind"])
        amount, count = sums[key]
        new = row["transaction_id"] not in seen[key]
        seen[key].add(row["transaction_id"])
        sums[key] = (amount + row["amount"], count + new)
    return _nonzero(sums)


def _revenue_by_branch() -> dict:
    """Each subscriber's share of the revenue postings: the revenue leg of a transaction of one subscriber, and for
    a billing run's batch (many subscribers, one revenue leg) minus each subscriber's own postings in it."""
    from abonent.billing.models import LedgerTransaction
    from abonent.subscribers.models import Subscriber

    branches = dict(Subscriber.objects.values_list("id", "branch_id"))
    sums: dict = defaultdict(lambda: ZERO)
    revenue_tx = set(_revenue_postings().values_list("transaction_id", flat=True))
    for tx in LedgerTransaction.objects.filter(id__in=revenue_tx):
        revenue = _revenue_postings().filter(transaction=tx).aggregate(t=Sum("amount"))["t"]
        if tx.subscriber_id is not None:
            sums[branches.get(tx.subscriber_id) or 0] += revenue
            continue
        for subscriber_id, amount in Posting.objects.filter(
            transaction=tx, account__kind=AccountKind.SUBSCRIBER
        ).values_list("account__subscriber_id", "amount"):
            sums[branches[subscriber_id]] -= amount
    return _nonzero(sums)


def _by_branch(model) -> dict:
    return _nonzero(
        {row["branch_id"]: row["total"] for row in model.objects.values("branch_id").annotate(total=Sum("amount"))}
    )


def _cash_facts() -> dict:
    sums: dict = defaultdict(lambda: ZERO)
    for row in PaymentFact.objects.values("day", "channel", "amount"):
        sums[(row["day"], row["channel"])] += row["amount"]
    return _nonzero(sums)


def _cash() -> dict:
    sums: dict = defaultdict(lambda: ZERO)
    for row in Posting.objects.filter(account__kind__in=[AccountKind.CASH, AccountKind.CLEARING]).values(
        "transaction__effective_date", "account__code", "amount"
    ):
        channel = row["account__code"].split(":", 1)[1]
        sums[(row["transaction__effective_date"], channel)] -= row["amount"]
    return _nonzero(sums)
