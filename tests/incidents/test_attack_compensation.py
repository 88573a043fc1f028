"""Attack review of the compensation: who is credited (a subscription that did not exist during the incident is
not), what a typed number of days means (no digit separators nor other scripts' digits), and defences that hold
(a personal price, a plan charged by the day, a frozen or closed subscriber in between, the ledger balanced)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.catalog.models import FreezePolicy
from abonent.core import clock
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.compensation import do_compensate_incident
from abonent.helpdesk.incidents.models import Compensation, CompensationLine
from abonent.subscribers.actions import do_close_subscriber

from .conftest import LENINA_1_12, START

D = Decimal
NEXT_DAY = START + dt.timedelta(days=1)  # 21 November: a 30-day month, 600 ₽ is 20 ₽ a day
pytestmark = pytest.mark.django_db


def _resolved(open_incident, admin, **scope):
    incident = open_incident(**scope)
    with clock.travel_to(START + dt.timedelta(hours=6)):
        return actions.do_resolve_incident(incident, acting_user=admin)


def _compensate(incident, days, user, at=NEXT_DAY):
    with clock.travel_to(at):
        return do_compensate_incident(incident, days=days, acting_user=user)


def test_a_subscription_started_after_the_incident_ended_gets_nothing(customer, open_incident, admin, plan):
    # Given two subscribers at an affected address: one paying during the outage, one who had no service then
    paying, newcomer = customer("5"), customer("6", subscribe=False)
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    assert incident.affected_count == 2  # an address is affected whoever lives there

    # When the newcomer subscribes a week after it was over, and then the incident is compensated 3 days
    with clock.travel_to(dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC)):
        billing.do_post_payment(newcomer, amount="1000.00", channel="test", external_id="newcomer")
        billing.do_activate_subscription(newcomer, plan=plan, acting_user=admin)
    balance_before = get_balance(newcomer).balance
    compensation, _created = _compensate(incident, 3, admin, at=dt.datetime(2026, 11, 28, 9, tzinfo=dt.UTC))

    # Then only the subscription that was paying during the outage is credited
    assert {line.subscriber_id for line in compensation.lines.all()} == {paying.pk}
    assert get_balance(newcomer).balance == balance_before
    assert compensation.total == D("60.00")
    assert ledger.verify() == []


@pytest.mark.parametrize("days", ["1_0", "３", "٣", "\u0663"])
def test_days_with_separators_or_other_digits_are_refused(customer, open_incident, admin, days):
    # "1_0" is 10 to Python's int() and "３" is 3: an operator's slip would credit ten days, or a number nobody typed
    a = customer("5")
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    with pytest.raises(ValidationError) as refused:
        _compensate(incident, days, admin)
    assert refused.value.error_dict["days"][0].code == "days_invalid"
    assert (Compensation.objects.count(), CompensationLine.objects.count()) == (0, 0)
    assert get_balance(a).balance == D("400.00")


def test_defence_a_daily_plan_and_a_frozen_and_a_closed_subscriber(
    customer, open_incident, admin, make_plan, django_capture_on_commit_callbacks
):
    # Defence that holds: a plan charged by the day gets N days' fee; a subscription frozen from the incident's day
    # (its fee stopped from that day) and a subscriber closed in between (billing ends its subscriptions after the
    # commit) get nothing; the ledger stays balanced.
    daily = make_plan(
        "daily", "300.00", name="Посуточный", charge_mode="daily", daily_pricing="fixed", daily_fee=D("12.34")
    )
    freezable = make_plan("freezable", "600.00", freeze_policy=FreezePolicy.objects.create(name="Отпуск"))
    by_day, frozen, closed = customer("5", on_plan=daily), customer("6", on_plan=freezable), customer("7")
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=8)):
        billing.do_freeze_subscription(frozen.subscriptions.get(), acting_user=admin, days=14, reason="отпуск")
        with django_capture_on_commit_callbacks(execute=True):
            do_close_subscriber(closed, acting_user=admin, reason="переезд")
    compensation, _created = _compensate(incident, 3, admin)
    assert {line.subscriber_id: line.amount for line in compensation.lines.all()} == {by_day.pk: D("37.02")}
    assert ledger.verify() == []


def test_a_closed_account_whose_subscription_is_still_active_gets_nothing(customer, open_incident, admin):
    # Billing ends a closed account's subscriptions in an after-commit handler, whose failure is only logged
    # (core.events): the account is closed, its subscription still "active". Closed accounts are never affected.
    paying, closed = customer("5"), customer("7")
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=8)):
        do_close_subscriber(closed, acting_user=admin, reason="переезд")  # its handler does not run here
    assert closed.subscriptions.get().status == "active"
    compensation, _created = _compensate(incident, 3, admin)
    assert {line.subscriber_id for line in compensation.lines.all()} == {paying.pk}
    assert get_balance(closed).balance == D("400.00")


def test_defence_a_personal_price_net_of_a_promotion_and_a_zero_price_plan(customer, open_incident, admin, make_plan):
    # Defence that holds: 3 days of a personal 450 ₽ less a 10 % promotion (405 ₽ / 30 days) is 40.50; a free plan
    # gets nothing (no zero line: the ledger refuses those).
    from abonent.billing.pricing import actions as pricing

    free = make_plan("free", "0.00", name="Бесплатный")
    personal, gratis = customer("5"), customer("6", on_plan=free)
    with clock.travel_to(dt.date(2026, 10, 20)):
        pricing.do_set_price_override(
            subscription=personal.subscriptions.get(),
            plan=personal.subscriptions.get().plan,
            monthly_fee="450.00",
            valid_from=dt.date(2026, 11, 1),
            reason="Договор 17",
            acting_user=admin,
        )
        pricing.do_create_promotion(name="Осень", kind="percent", value="10", acting_user=admin)
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    compensation, _created = _compensate(incident, 3, admin)
    assert {line.subscriber_id: line.amount for line in compensation.lines.all()} == {personal.pk: D("40.50")}
    assert get_balance(gratis).balance == D("1000.00")
    assert ledger.verify() == []


def test_a_subscription_frozen_all_through_the_incident_gets_nothing(customer, open_incident, admin, make_plan):
    # Given two subscribers on a freezable plan at an affected address; one froze on 10 November for 20 days
    freezable = make_plan("freezable", "600.00", freeze_policy=FreezePolicy.objects.create(name="Отпуск"))
    paying, away = customer("5", on_plan=freezable), customer("6", on_plan=freezable)
    with clock.travel_to(dt.date(2026, 11, 10)):
        billing.do_freeze_subscription(away.subscriptions.get(), acting_user=admin, days=20, reason="отпуск")
    # When the outage of 20 November is over, the frozen one comes back early (21 November), and it is compensated
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    with clock.travel_to(dt.datetime(2026, 11, 21, 8, tzinfo=dt.UTC)):
        billing.do_unfreeze_subscription(away.subscriptions.get(), acting_user=admin, reason="вернулся")
    balance_before = get_balance(away).balance
    compensation, _created = _compensate(incident, 3, admin, at=dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC))

    # Then the one whose service was paused all through the outage (and paid no fee for it) is not credited
    assert {line.subscriber_id for line in compensation.lines.all()} == {paying.pk}
    assert get_balance(away).balance == balance_before
    assert ledger.verify() == []


def test_a_subscriber_who_froze_after_the_incident_is_still_compensated(customer, open_incident, admin, make_plan):
    # Given a subscriber who paid through the outage of 20 November and froze from the 21st for a vacation
    freezable = make_plan("freezable", "600.00", freeze_policy=FreezePolicy.objects.create(name="Отпуск"))
    away = customer("5", on_plan=freezable)
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    with clock.travel_to(dt.datetime(2026, 11, 21, 8, tzinfo=dt.UTC)):
        billing.do_freeze_subscription(away.subscriptions.get(), acting_user=admin, days=14, reason="отпуск")
    balance_before = get_balance(away).balance

    # When the incident is compensated while they are away (it is done once: there is no later run for them)
    compensation, _created = _compensate(incident, 3, admin, at=dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC))

    # Then they are credited their 3 days like everyone who paid through it
    assert {line.subscriber_id: line.amount for line in compensation.lines.all()} == {away.pk: D("60.00")}
    assert get_balance(away).balance == balance_before + D("60.00")
    assert ledger.verify() == []
