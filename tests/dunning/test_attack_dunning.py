"""Attack review of dunning (issue 14): sequences, races and inputs that leave a subscriber in the wrong access
state, lose a notice, or break the sweep for everyone. Each test fails on the code it was written against."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from abonent.billing import actions as billing
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.dunning import actions, writing
from abonent.dunning.evaluation import sweep
from abonent.dunning.models import AccessState, AccessStateKind
from abonent.notifications.models import Event, Message

State = AccessStateKind
postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="two connections at once: the test database is PostgreSQL's"
)


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.ABONENT_QUIET_HOURS = ""


@pytest.fixture
def monthly(make_plan):
    return make_plan("internet-100", "650.00", name="Интернет-100")


def _customer(make_subscriber, plan, admin, *, phone="+79161234567", paid="700.00"):
    """``paid`` on 1 November, the plan's November fee charged at activation."""
    customer = make_subscriber(phone=phone)
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(customer, amount=paid, channel="test", external_id=f"opening-{phone}")
        billing.do_activate_subscription(customer, plan=plan, acting_user=admin)
    return customer


@pytest.fixture
def subscriber(make_subscriber, monthly, admin):
    """700 ₽ paid on 1 November; November's 650 ₽ charged: 50 ₽ left for December's 650 ₽."""
    return _customer(make_subscriber, monthly, admin)


def state_of(subscriber) -> str:
    row = AccessState.objects.filter(subscriber=subscriber).first()
    return row.state if row else State.ACTIVE


def sweep_on(moment):
    with clock.travel_to(moment):
        return sweep()


def billing_available(subscriber) -> Decimal:
    from abonent.billing.models import LedgerAccount

    account = LedgerAccount.objects.get(subscriber=subscriber)
    return account.balance + account.credit_limit


def events_sent(subscriber) -> list[str]:
    return list(
        Message.objects.filter(subscriber=subscriber, channel="sms").order_by("id").values_list("event", flat=True)
    )


# --- one subscriber's money breaks the sweep for everyone --------------------------------------------------------


@pytest.mark.django_db
def test_a_rich_subscriber_on_a_cheap_plan_does_not_stop_the_sweep_for_everyone(
    make_subscriber, make_plan, monthly, admin
):
    """A staff account (or any subscriber) on a token plan of 1 ₽ a month holds 100,000 ₽ — well inside the
    ledger's limits. ``decide`` turns that into 3,000,000 days of money and ``today + timedelta(days=...)`` runs
    past year 9999: OverflowError. The exception escapes ``sweep()`` before the chunk is written, so every
    debtor in the same 50,000-id chunk (here: one who owes 600 ₽) keeps full access, sweep after sweep."""
    token = make_plan("staff-1", "1.00", name="Служебный")
    _customer(make_subscriber, token, admin, phone="+79161230001", paid="100000.00")
    debtor = _customer(make_subscriber, monthly, admin, phone="+79161230002")
    run_on(dt.date(2026, 12, 1))  # December's fees: the debtor owes 600 ₽
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    assert state_of(debtor) == State.RESTRICTED


@pytest.mark.django_db
def test_a_large_payment_on_a_cheap_plan_is_evaluated(
    make_subscriber, make_plan, admin, django_capture_on_commit_callbacks
):
    """The same overflow after a payment: a restricted subscriber on a 1 ₽ plan pays 100,000 ₽ in advance; the
    evaluation after commit raises (logged and swallowed by dunning's event handler), so access is not restored
    at once, and the next sweep raises too: the payer stays on the payment page indefinitely."""
    token = make_plan("staff-1", "1.00", name="Служебный")
    customer = _customer(make_subscriber, token, admin, paid="0.50")
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    assert state_of(customer) == State.RESTRICTED
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)), django_capture_on_commit_callbacks(execute=True):
        billing.do_post_payment(customer, amount="100000.00", channel="test", external_id="advance")
    assert state_of(customer) == State.ACTIVE


# --- races on PostgreSQL -----------------------------------------------------------------------------------------


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def _wait_for_lock_waiter(timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _lock_waiters() > 0:
            return True
        time.sleep(0.05)
    return False


def _in_thread(target, results: dict, name: str, *, moment) -> threading.Thread:
    def run() -> None:
        try:
            with clock.travel_to(moment):
                results[name] = target()
        except Exception as exc:  # the test reads it
            results[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_sweep_does_not_overwrite_an_operators_block_committed_under_it(subscriber, operator):
    """An operator blocks a subscriber who has never left ``active`` (no AccessState row: a row is only written
    on a change) at the moment the periodic sweep finds the same subscriber in debt. The sweep read "no row"
    before the block committed; its lock-and-recheck (``select_for_update`` of the rows it read) has no row to
    lock, so its ``INSERT … ON CONFLICT DO UPDATE`` waits on the block's insert and then overwrites it: the
    operator's block silently becomes ``restricted`` (web access to the payment page instead of no access), and
    a payment then lets the blocked subscriber back in."""
    run_on(dt.date(2026, 12, 1))  # owes 600 ₽; never swept, so no AccessState row
    assert not AccessState.objects.filter(subscriber=subscriber).exists()
    moment = dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)
    holding, release = threading.Event(), threading.Event()
    results: dict = {}

    def block():
        with transaction.atomic():
            actions.do_block_access(subscriber, acting_user=operator, reason="Порча оборудования")
            holding.set()
            release.wait(15)

    blocker = _in_thread(block, results, "block", moment=moment)
    assert holding.wait(10)
    sweeper = _in_thread(sweep, results, "sweep", moment=moment)
    try:
        assert _wait_for_lock_waiter(), "the sweep never waited on the block's row"
    finally:
        release.set()
        blocker.join(15)
        sweeper.join(15)
    assert not isinstance(results.get("block"), Exception), results
    assert state_of(subscriber) == State.BLOCKED, results


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_payment_during_a_sweep_restores_access_at_once(subscriber, monkeypatch):
    """A warned subscriber pays the 600 ₽ due while the sweep that read the old balance (−600 ₽ → restricted) is
    writing. The payment's evaluation reads ``warned`` (the sweep has not committed), waits for the sweep's row
    lock, then finds the state moved (``restricted`` ≠ ``warned``) and drops its own fresh verdict as "another
    writer won". The sweep's stale ``restricted`` stands: the subscriber who just paid is redirected to the
    payment page (and a restrict CoA is queued) until the next sweep, ten minutes later — invariant 5 says a
    payment restores access at once."""
    sweep_on(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.WARNED
    run_on(dt.date(2026, 12, 1))  # December's 650 ₽: −600 ₽
    holding, release = threading.Event(), threading.Event()
    # The writer moved to ``dunning.writing`` since this test was written (the sweep's notices are queued there).
    original = writing.notify_many

    def notify_then_pause(notices):
        count = original(notices)
        if threading.current_thread().name == "sweep":
            holding.set()  # the sweep has written restricted and holds the row lock, not yet committed
            release.wait(15)
        return count

    monkeypatch.setattr(writing, "notify_many", notify_then_pause)
    results: dict = {}
    sweeper = _in_thread(sweep, results, "sweep", moment=dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    assert holding.wait(10)

    def pay():
        billing.do_post_payment(subscriber, amount="600.00", channel="test", external_id="pays-now")

    payer = _in_thread(pay, results, "pay", moment=dt.datetime(2026, 12, 1, 6, 0, 5, tzinfo=dt.UTC))
    try:
        assert _wait_for_lock_waiter(), "the payment's evaluation never waited on the sweep's row lock"
    finally:
        release.set()
        sweeper.join(15)
        payer.join(15)
    assert not isinstance(results.get("pay"), Exception), results
    assert billing_available(subscriber) == Decimal("0.00")
    assert state_of(subscriber) in (State.ACTIVE, State.WARNED)  # 0 ₽, December paid


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_operators_block_does_not_undo_a_termination_committed_meanwhile(subscriber, admin, operator):
    """An administrator terminates a debtor's access; at the same moment an operator (no ``dunning.terminate``)
    blocks the same subscriber. ``do_block_access`` checks "not terminated" on an unlocked read, then locks the
    row, waits for the termination to commit and overwrites ``terminated`` with ``blocked``. The operator can
    now unblock (``do_unblock_access`` only needs ``dunning.manage``): a termination, which only an
    administrator may lift, has been lifted by an operator."""
    sweep_on(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))  # a row exists: warned
    moment = dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC)
    holding, release = threading.Event(), threading.Event()
    results: dict = {}

    def terminate():
        with transaction.atomic():
            actions.do_terminate_access(subscriber, acting_user=admin, reason="Договор расторгнут")
            holding.set()
            release.wait(15)

    def block():
        return actions.do_block_access(subscriber, acting_user=operator, reason="Порча оборудования")

    terminator = _in_thread(terminate, results, "terminate", moment=moment)
    assert holding.wait(10)
    blocker = _in_thread(block, results, "block", moment=moment)
    try:
        assert _wait_for_lock_waiter(), "the block never waited on the termination's row lock"
    finally:
        release.set()
        terminator.join(15)
        blocker.join(15)
    assert state_of(subscriber) == State.TERMINATED, results


# --- notices ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_restricted_again_within_the_same_minute_is_told_again(subscriber, admin, django_capture_on_commit_callbacks):
    """A debtor is restricted by the sweep at 06:00:05 (SMS "restricted"). At 06:00:20 an operator credits
    600 ₽ to the wrong account (SMS "restored"), notices and reverses it at 06:00:50: the subscriber is
    restricted again, but the notice key is ``dunning:restricted:<id>:<minute>``, the same as the first one's,
    so the outbox drops it as a duplicate. The last thing the subscriber heard is "access restored"."""
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, 0, 5, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.RESTRICTED
    with (
        clock.travel_to(dt.datetime(2026, 12, 1, 6, 0, 20, tzinfo=dt.UTC)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        tx = billing.do_adjust_balance(subscriber, amount="600.00", reason="Оплата через кассу", acting_user=admin)
    assert state_of(subscriber) in (State.ACTIVE, State.WARNED)
    with (
        clock.travel_to(dt.datetime(2026, 12, 1, 6, 0, 50, tzinfo=dt.UTC)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        billing.do_reverse_transaction(tx, reason="Не тот лицевой счёт", acting_user=admin)
    assert state_of(subscriber) == State.RESTRICTED
    sent = [e for e in events_sent(subscriber) if e in (Event.RESTRICTED, Event.RESTORED)]
    assert sent == [Event.RESTRICTED, Event.RESTORED, Event.RESTRICTED]


# --- staff states -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_block_and_unblock_does_not_reset_a_suspended_debtors_clock(subscriber, operator):
    """A debtor restricted on 1 December is suspended on the 15th (14 days). On the 16th an operator blocks
    and, minutes later, unblocks (a mistaken block, or on purpose). ``_lift`` clears ``restricted_since`` and
    the re-evaluation starts a new debt episode: the debtor, who owes the same 600 ₽ and has not paid, is back
    to ``restricted`` (accepted with the payment-page redirect instead of rejected) for another 14 days."""
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    sweep_on(dt.datetime(2026, 12, 15, 7, tzinfo=dt.UTC))
    assert state_of(subscriber) == State.SUSPENDED
    with clock.travel_to(dt.datetime(2026, 12, 16, 10, tzinfo=dt.UTC)):
        actions.do_block_access(subscriber, acting_user=operator, reason="Ошибочно")
        actions.do_unblock_access(subscriber, acting_user=operator, reason="Снял ошибочную блокировку")
    assert state_of(subscriber) == State.SUSPENDED


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_staff_block_gives_up_on_a_row_locked_by_a_stuck_transaction(subscriber, operator):
    """Another transaction holds the subscriber's AccessState row and hangs (a stuck worker, an admin's psql
    session left open in a transaction). The dunning writer bounds its own waits (``db_deadline(lock=5)``),
    but the staff actions take the same row lock with no deadline at all: the operator's "Block" (console or
    API) hangs for as long as the other transaction does, holding a web thread and a pooled connection,
    instead of failing with the deadline error the API turns into a 503."""
    sweep_on(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))  # a row exists: warned
    holding, release = threading.Event(), threading.Event()
    results: dict = {}

    def stuck():
        with transaction.atomic():
            list(AccessState.objects.select_for_update().filter(subscriber=subscriber))
            holding.set()
            release.wait(30)

    def block():
        return actions.do_block_access(subscriber, acting_user=operator, reason="Порча оборудования")

    moment = dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC)
    holder = _in_thread(stuck, results, "stuck", moment=moment)
    assert holding.wait(10)
    blocker = _in_thread(block, results, "block", moment=moment)
    try:
        blocker.join(8)  # longer than the dunning writer's own lock deadline (5 s)
        finished = not blocker.is_alive()
    finally:
        release.set()
        holder.join(15)
        blocker.join(15)
    assert finished, "do_block_access was still waiting on the lock after 8 s"


# --- rules ---------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_subscriber_in_two_groups_is_warned_by_the_earliest_rule(subscriber, admin):
    """Several group rules: the one warning earliest (and suspending latest) wins, as docs/dunning.md says and
    the facts query does (``MAX(warn_days)``). The attack found ``DunningRule``'s docstring promising "the lowest
    ``warn_days``": the docstring was wrong, not the rule (a subscriber is better warned early than late), so this
    test now holds the documented behaviour: in a "lenient" group (warn 1 day before) and a "nervous" one (10
    days), 6 days before the charge the subscriber is warned."""
    from abonent.subscribers.models import SubscriberGroup

    lenient = SubscriberGroup.objects.create(name="Льготники")
    nervous = SubscriberGroup.objects.create(name="Новые")
    actions.do_save_rule(None, acting_user=admin, name="Льготники", group=lenient, warn_days=1)
    actions.do_save_rule(None, acting_user=admin, name="Новые", group=nervous, warn_days=10)
    subscriber.groups.add(lenient, nervous)
    sweep_on(dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC))  # 6 days to the charge of 1 December, 50 ₽ < 650 ₽
    assert state_of(subscriber) == State.WARNED
