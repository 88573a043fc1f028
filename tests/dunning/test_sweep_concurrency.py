"""A sweep and an evaluation after a payment, for the same subscriber at the same moment, on PostgreSQL (threads,
each with its own connection): one transition and one notice, whoever wins.

The first two cases force the worst interleaving: both have read the subscriber's facts and decided the same
change before either writes (a barrier in front of the write). The one that loses the lock (or the insert of a
new state row) finds the state moved under it and drops its change; the evaluation reads again and finds
nothing left to do. The last case runs the real path: payments whose evaluation runs on commit, while sweeps
run beside them.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.dunning import evaluation
from abonent.dunning.models import AccessState, AccessStateKind, AccessTransition
from abonent.notifications.models import Event, Message

pytestmark = pytest.mark.django_db(transaction=True)
State = AccessStateKind
NOV_1, DEC_1 = dt.date(2026, 11, 1), dt.date(2026, 12, 1)
MOMENT = dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)
DUNNING_EVENTS = [Event.RUNOUT_SOON, Event.RESTRICTED, Event.SUSPENDED, Event.RESTORED]


@pytest.fixture(autouse=True)
def _postgresql_only(settings):
    if connection.vendor != "postgresql":
        pytest.skip("row locks between connections need PostgreSQL")
    settings.ABONENT_QUIET_HOURS = ""


@pytest.fixture
def debtors(make_plan, make_subscriber, admin):
    """Subscribers who paid 100 ₽ and owe 550 ₽ since the run of 1 December (no state row yet)."""
    plan = make_plan("internet-100", "650.00")

    def make(n: int):
        people = []
        for number in range(n):
            person = make_subscriber(phone=f"+7916{number:07d}")
            with clock.travel_to(NOV_1):
                billing.do_post_payment(person, amount="750.00", channel="test", external_id=f"open-{number}")
                billing.do_activate_subscription(person, plan=plan, acting_user=admin)
            people.append(person)
        run_on(DEC_1)
        return people

    return make


def together(*fns):
    barrier = threading.Barrier(len(fns))
    errors = []

    def wrap(fn):
        try:
            barrier.wait(timeout=20)
            with clock.travel_to(MOMENT):
                fn()
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


@pytest.fixture
def meet_before_writing(monkeypatch):
    """Once called: hold the first write of a change of each of two threads until both have read and decided."""

    def arm():
        barrier = threading.Barrier(2)
        real = evaluation.write_changes
        waited = set()

        def write_changes(pairs, **kwargs):
            if pairs and threading.get_ident() not in waited:
                waited.add(threading.get_ident())
                barrier.wait(timeout=20)
            return real(pairs, **kwargs)

        monkeypatch.setattr(evaluation, "write_changes", write_changes)

    return arm


def pay_without_event(subscriber, amount: str):
    """A payment committed, its evaluation not yet run (the ledger's posting alone; the test runs it)."""
    with transaction.atomic(), clock.travel_to(MOMENT):
        account = ledger.subscriber_account(subscriber.pk, lock=True)
        ledger.post(
            key=f"payment:test:race-{subscriber.pk}",
            kind="payment",
            effective_date=clock.today(),
            legs=[(account.pk, Decimal(amount)), (ledger.cash_account("test").pk, -Decimal(amount))],
            subscriber_id=subscriber.pk,
        )


def history(subscriber):
    transitions = list(
        AccessTransition.objects.filter(subscriber=subscriber).order_by("id").values_list("from_state", "to_state")
    )
    notices = list(
        Message.objects.filter(subscriber=subscriber, event__in=DUNNING_EVENTS)
        .order_by("id")
        .values_list("event", flat=True)
    )
    return transitions, notices


def test_a_sweep_and_an_evaluation_after_a_payment_restore_once(debtors, meet_before_writing):
    [debtor] = debtors(1)
    with clock.travel_to(MOMENT - dt.timedelta(hours=1)):
        evaluation.evaluate([debtor.pk])
    assert AccessState.objects.get(subscriber=debtor).state == State.RESTRICTED
    pay_without_event(debtor, "600.00")
    meet_before_writing()

    together(lambda: evaluation.evaluate([debtor.pk]), evaluation.sweep)

    transitions, notices = history(debtor)
    assert transitions == [(State.ACTIVE, State.RESTRICTED), (State.RESTRICTED, State.ACTIVE)]
    assert notices == [Event.RESTRICTED, Event.RESTORED]
    assert AccessState.objects.get(subscriber=debtor).state == State.ACTIVE


def test_a_first_state_row_is_written_once_when_both_create_it(debtors, meet_before_writing):
    [debtor] = debtors(1)
    assert not AccessState.objects.filter(subscriber=debtor).exists()
    meet_before_writing()

    together(lambda: evaluation.evaluate([debtor.pk]), evaluation.sweep)

    transitions, notices = history(debtor)
    assert transitions == [(State.ACTIVE, State.RESTRICTED)]
    assert notices == [Event.RESTRICTED]
    state = AccessState.objects.get(subscriber=debtor)
    assert (state.state, state.owed) == (State.RESTRICTED, Decimal("550.00"))


def test_payments_evaluated_on_commit_while_sweeps_run(debtors):
    people = debtors(12)
    with clock.travel_to(MOMENT - dt.timedelta(hours=1)):
        evaluation.sweep()
    assert set(AccessState.objects.values_list("state", flat=True)) == {State.RESTRICTED}

    def pay_all():
        for number, person in enumerate(people):
            billing.do_post_payment(person, amount="600.00", channel="test", external_id=f"debt-{number}")

    def sweep_thrice():
        for _ in range(3):
            evaluation.sweep()

    together(pay_all, sweep_thrice)

    for person in people:
        transitions, notices = history(person)
        assert transitions == [(State.ACTIVE, State.RESTRICTED), (State.RESTRICTED, State.ACTIVE)]
        assert notices.count(Event.RESTORED) == 1
