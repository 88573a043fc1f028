"""The debt episode through freezes and staff states, closed accounts, changes of groups, reasons with control
characters, staff actions that give up on a held row, money lasting for ages, and the writer's guard of staff
states (issue 14's attack review, the findings beside ``test_attack_dunning.py``)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from abonent.billing import actions as billing
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.dunning import actions, selectors, writing
from abonent.dunning.decide import MAX_DAYS_LEFT, decide
from abonent.dunning.evaluation import sweep
from abonent.dunning.facts import Facts
from abonent.dunning.models import AccessState, AccessStateKind, AccessTransition, Exemption
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_close_subscriber, do_update_subscriber
from abonent.subscribers.models import SubscriberGroup

from .console_data import RESTRICTED_AT, monthly_plan, paying_subscriber

State = AccessStateKind
postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="two connections at once: the test database is PostgreSQL's"
)


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.ABONENT_QUIET_HOURS = ""


@pytest.fixture
def debtor(make_subscriber, make_plan, admin):
    """Restricted on 1 December at 06:00, owing 600 ₽ (December's 650 ₽ against the 50 ₽ left)."""
    customer = paying_subscriber(make_subscriber, monthly_plan(make_plan), admin)
    run_on(dt.date(2026, 12, 1))
    with clock.travel_to(RESTRICTED_AT):
        sweep()
    return customer


def row_of(subscriber) -> AccessState:
    return AccessState.objects.get(subscriber=subscriber)


# --- the debt episode --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_debtor_who_freezes_and_unfreezes_keeps_the_days_already_restricted(
    debtor, admin, django_capture_on_commit_callbacks
):
    """Restricted on 1 December; frozen on the 5th (the unused days credited back leave it still in debt), back on
    the 12th. Its 14 days count from 1 December, not from the unfreezing: suspended on the 15th, not the 26th."""
    assert row_of(debtor).state == State.RESTRICTED
    subscription = debtor.subscriptions.get()
    with clock.travel_to(dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC)), django_capture_on_commit_callbacks(execute=True):
        billing.do_freeze_subscription(subscription, days=7, acting_user=admin)
    frozen = row_of(debtor)
    assert frozen.state == State.FROZEN
    assert frozen.owed > 0
    assert frozen.restricted_since == RESTRICTED_AT
    with (
        clock.travel_to(dt.datetime(2026, 12, 12, 9, tzinfo=dt.UTC)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        billing.do_unfreeze_subscription(subscription, acting_user=admin)
    back = row_of(debtor)
    assert (back.state, back.restricted_since) == (State.RESTRICTED, RESTRICTED_AT)
    with clock.travel_to(dt.datetime(2026, 12, 15, 7, tzinfo=dt.UTC)):
        sweep()
    assert row_of(debtor).state == State.SUSPENDED


@pytest.mark.django_db
def test_a_debt_paid_while_blocked_ends_the_episode(debtor, operator, django_capture_on_commit_callbacks):
    """The episode lasts only while the debt does: paid during a block, it ends, and a new debt after the unblocking
    starts a fresh one (restricted, not suspended at once)."""
    with clock.travel_to(dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC)):
        actions.do_block_access(debtor, acting_user=operator, reason="Порча оборудования")
    assert row_of(debtor).restricted_since == RESTRICTED_AT
    with clock.travel_to(dt.datetime(2026, 12, 4, 9, tzinfo=dt.UTC)), django_capture_on_commit_callbacks(execute=True):
        billing.do_post_payment(debtor, amount="600.00", channel="test", external_id="pays")
    assert (row_of(debtor).state, row_of(debtor).restricted_since) == (State.BLOCKED, None)
    run_on(dt.date(2027, 1, 1))  # January's 650 ₽: in debt again
    with clock.travel_to(dt.datetime(2027, 1, 20, 9, tzinfo=dt.UTC)):
        lifted = actions.do_unblock_access(debtor, acting_user=operator, reason="Оборудование заменено")
    assert lifted.state == State.RESTRICTED
    assert lifted.restricted_since == dt.datetime(2027, 1, 20, 9, tzinfo=dt.UTC)
    # One transition for the unblocking, straight to where the money puts it.
    last = AccessTransition.objects.filter(subscriber=debtor).order_by("-id").first()
    assert (last.from_state, last.to_state, last.reason) == (State.BLOCKED, State.RESTRICTED, "Оборудование заменено")


# --- closed accounts ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_closing_a_restricted_subscriber_takes_it_out_of_the_queue_and_radius_sets(
    debtor, admin, django_capture_on_commit_callbacks
):
    assert debtor.pk in selectors.redirected_subscribers()
    with clock.travel_to(dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)), django_capture_on_commit_callbacks(execute=True):
        do_close_subscriber(debtor, reason="Переезд", acting_user=admin)
    row = row_of(debtor)
    assert (row.state, row.owed, row.restricted_since) == (State.ACTIVE, Decimal("0.00"), None)
    last = AccessTransition.objects.filter(subscriber=debtor).order_by("-id").first()
    assert (last.from_state, last.to_state, last.cause) == (State.RESTRICTED, State.ACTIVE, "closed")
    assert debtor.pk not in selectors.redirected_subscribers()
    assert debtor.pk not in selectors.denied_subscribers()
    assert not selectors.queue(admin, selectors.QueueFilters()).filter(subscriber=debtor).exists()
    with clock.travel_to(dt.datetime(2026, 12, 20, 9, tzinfo=dt.UTC)):
        sweep()
    assert row_of(debtor).state == State.ACTIVE


@pytest.mark.django_db
def test_closing_keeps_an_operators_block_but_not_in_the_queue(debtor, admin, django_capture_on_commit_callbacks):
    with clock.travel_to(dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)):
        actions.do_block_access(debtor, acting_user=admin, reason="Порча оборудования")
    with clock.travel_to(dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)), django_capture_on_commit_callbacks(execute=True):
        do_close_subscriber(debtor, reason="Переезд", acting_user=admin)
    assert row_of(debtor).state == State.BLOCKED
    assert not selectors.queue(admin, selectors.QueueFilters()).filter(subscriber=debtor).exists()


# --- groups ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_leaving_an_exempt_group_restricts_a_debtor_at_once(debtor, admin, django_capture_on_commit_callbacks):
    hospital = SubscriberGroup.objects.create(name="Больницы")
    with clock.travel_to(dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)), django_capture_on_commit_callbacks(execute=True):
        do_update_subscriber(debtor, changes={"group_ids": [hospital.pk]}, acting_user=admin)
        actions.do_create_exemption(
            group=hospital, acting_user=admin, reason="Больница", expires_on=dt.date(2027, 6, 1)
        )
    assert row_of(debtor).state == State.WARNED  # exempt: never blocked
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)), django_capture_on_commit_callbacks(execute=True):
        do_update_subscriber(debtor, changes={"group_ids": []}, acting_user=admin)
    row = row_of(debtor)
    assert (row.state, row.exempt) == (State.RESTRICTED, False)
    last = AccessTransition.objects.filter(subscriber=debtor).order_by("-id").first()
    assert (last.from_state, last.to_state, last.cause) == (State.WARNED, State.RESTRICTED, "groups")
    assert Exemption.objects.get().revoked_at is None  # the group's exemption itself is untouched


# --- reasons -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "reason",
    ["Порча\u202eяинаводуробо", "Долг\u2066 скрыт\u2069", "Звонок\x07", "Строка\nвторая", "C1\x85", "ESC\x1b[31m"],
)
def test_a_reason_with_control_characters_is_refused(debtor, operator, reason):
    with pytest.raises(ValidationError) as refused:
        actions.do_block_access(debtor, acting_user=operator, reason=reason)
    assert refused.value.error_dict["reason"][0].code == "control_characters"
    assert row_of(debtor).state == State.RESTRICTED


@pytest.mark.django_db
def test_the_api_refuses_a_reason_with_a_bidi_override(debtor, api_of):
    response = api_of(Role.OPERATOR).post(f"/api/v1/subscribers/{debtor.pk}/access/block", {"reason": "Оплачено\u202e"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0] == {
        "field": "reason",
        "code": "control_characters",
        "message": "Remove the control characters from the reason.",
    }
    assert row_of(debtor).state == State.RESTRICTED


# --- deadlines ---------------------------------------------------------------------------------------------------


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_block_on_a_held_row_answers_503_and_writes_nothing(debtor, api_of):
    holding, release = threading.Event(), threading.Event()

    def stuck():
        try:
            with transaction.atomic():
                list(AccessState.objects.select_for_update().filter(subscriber=debtor))
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=stuck, daemon=True)
    holder.start()
    assert holding.wait(10)
    try:
        response = api_of(Role.OPERATOR).post(
            f"/api/v1/subscribers/{debtor.pk}/access/block", {"reason": "Порча оборудования"}
        )
    finally:
        release.set()
        holder.join(15)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "access_busy"
    assert row_of(debtor).state == State.RESTRICTED
    assert not AccessTransition.objects.filter(subscriber=debtor, to_state=State.BLOCKED).exists()


# --- money lasting for ages, and the writer's guard ------------------------------------------------------------


def _facts(**fields) -> Facts:
    """A subscriber with 100,000 ₽ on a 1 ₽ monthly plan, unless ``fields`` say otherwise."""
    return Facts(
        **{
            "subscriber_id": 1,
            "available": Decimal("100000.00"),
            "monthly_due": Decimal("1.00"),
            "monthly_next": dt.date(2026, 12, 1),
            "daily_rate": Decimal("0"),
            "active": 1,
            "frozen": 0,
            "state": None,
            "restricted_since": None,
            "owed": Decimal("0"),
            "exempt": False,
            "was_exempt": False,
            "reminded_for": None,
            "reminded_days": None,
            "warn_days": 365,
            "suspend_days": 14,
            **fields,
        }
    )


@pytest.mark.parametrize(
    "fields",
    [
        {},  # 100,000 months of a 1 ₽ plan
        {"monthly_due": Decimal("0"), "daily_rate": Decimal("0.0001")},  # a billion days
        {"monthly_next": dt.date(9999, 12, 1)},  # a charge date at the end of the calendar
    ],
)
def test_money_lasting_for_ages_counts_as_ten_years(fields):
    today = dt.date(2026, 11, 20)
    verdict = decide(_facts(**fields), today=today, now=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC), remind_days=(3, 1))
    assert (verdict.state, verdict.days_left, verdict.remind) == (State.ACTIVE, MAX_DAYS_LEFT, None)
    assert verdict.runout_on == today + dt.timedelta(days=MAX_DAYS_LEFT)


@pytest.mark.django_db
def test_the_writers_upsert_never_replaces_a_staff_state(debtor, operator):
    """The guard behind the locks: a computed row that reaches the upsert for a blocked subscriber (as if its lock
    had been missed) is not written, and the writer learns it was not."""
    with clock.travel_to(dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)):
        actions.do_block_access(debtor, acting_user=operator, reason="Порча оборудования")
    now = dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)
    facts = _facts(subscriber_id=debtor.pk, available=Decimal("-600.00"), state=State.RESTRICTED)
    verdict = decide(facts, today=now.date(), now=now)
    assert verdict.state == State.RESTRICTED
    with transaction.atomic():
        written = writing._update([writing._state_row(facts, verdict, now, since=now)])
    assert written == set()
    assert row_of(debtor).state == State.BLOCKED
