"""The compensation: N days' fees credited to each affected subscription exactly once (run twice, run at once from
two threads), in kopecks, balanced in the ledger; absurd N and the wrong people refused with nothing written."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from abonent.billing import ledger
from abonent.billing.models import LedgerTransaction
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.calculations import days_of_fee
from abonent.helpdesk.incidents.compensation import do_compensate_incident
from abonent.helpdesk.incidents.models import Compensation, CompensationLine
from abonent.staff.permissions import Role
from tests.concurrency import together

from .conftest import LENINA_1_12, START

D = Decimal
# Compensated the day after: 21 November, a 30-day month.
NEXT_DAY = START + dt.timedelta(days=1)


def _resolved(open_incident, admin, **scope):
    incident = open_incident(**scope)
    with clock.travel_to(START + dt.timedelta(hours=6)):
        return actions.do_resolve_incident(incident, acting_user=admin)


def _compensate(incident, days, user):
    with clock.travel_to(NEXT_DAY):
        return do_compensate_incident(incident, days=days, acting_user=user)


def _written():
    return (
        Compensation.objects.count(),
        CompensationLine.objects.count(),
        LedgerTransaction.objects.filter(idempotency_key__startswith="compensation:").count(),
    )


def test_days_of_fee_rounds_half_up_to_kopecks_once():
    assert days_of_fee(D("600.00"), 30, 3) == D("60.00")
    assert days_of_fee(D("599.99"), 30, 7) == D("140.00")  # 139.99766… → 140.00
    assert days_of_fee(D("100.00"), 31, 1) == D("3.23")  # 3.2258… → 3.23
    assert days_of_fee(D("100.00"), 30, 0) == D("0.00")


@pytest.mark.django_db
def test_credited_once_when_run_twice(customer, open_incident, admin, make_plan):
    # Given two affected subscribers (600 ₽ and 599.99 ₽ a month, 400 ₽ and 400.01 ₽ left) and one not affected
    pricey = make_plan("odd", "599.99", name="Нечётный")
    a, b, outside = customer("5"), customer("7", on_plan=pricey), customer("40")
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])

    # When it is compensated with 7 days, then again
    first, created = _compensate(incident, 7, admin)
    second, created_again = _compensate(incident, "7", admin)

    # Then each was credited 7/30 of their fee once: 140.00 and 140.00 (599.99 × 7 / 30 = 139.9977 → 140.00)
    assert (created, created_again, second.pk) == (True, False, first.pk)
    assert get_balance(a).balance == D("400.00") + D("140.00")
    assert get_balance(b).balance == D("400.01") + D("140.00")
    assert get_balance(outside).balance == D("400.00")
    assert first.total == D("280.00")
    lines = {line.subscriber_id: line.amount for line in CompensationLine.objects.all()}
    assert lines == {a.pk: D("140.00"), b.pk: D("140.00")}
    keys = set(
        LedgerTransaction.objects.filter(memo__startswith="Compensation").values_list("idempotency_key", flat=True)
    )
    assert keys == {f"compensation:{incident.pk}:{line.subscription_id}" for line in CompensationLine.objects.all()}
    # one audit row for the action, one per subscriber's credit (on their card)
    assert AuditEvent.objects.filter(action="incident.compensated").count() == 1
    assert AuditEvent.objects.filter(action="billing.balance_adjusted").count() == 2
    assert ledger.verify() == []


@pytest.mark.django_db
def test_other_days_after_a_compensation_is_a_field_error(customer, open_incident, admin):
    customer("5")
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    _compensate(incident, 3, admin)
    before = _written()
    with pytest.raises(ValidationError) as refused:
        _compensate(incident, 5, admin)
    assert refused.value.error_dict["days"][0].code == "already_compensated"
    assert _written() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("days", "code"),
    [(0, "days_out_of_range"), (-3, "days_out_of_range"), (10**6, "days_out_of_range"), ("3.5", "days_invalid"),
     ("", "days_invalid"), (True, "days_invalid"), ("1e3", "days_invalid")],
)  # fmt: skip
def test_absurd_days_are_refused_with_a_field_error(customer, open_incident, admin, days, code):
    a = customer("5")
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    with pytest.raises(ValidationError) as refused:
        _compensate(incident, days, admin)
    assert refused.value.error_dict["days"][0].code == code
    assert _written() == (0, 0, 0)
    assert get_balance(a).balance == D("400.00")


@pytest.mark.django_db
def test_an_open_incident_is_not_compensated(customer, open_incident, admin):
    customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with pytest.raises(ValidationError) as refused:
        _compensate(incident, 3, admin)
    assert refused.value.code == "incident_open"
    assert _written() == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["operator", "branch_admin"])
def test_only_an_unlimited_administrator_compensates(customer, open_incident, admin, make_staff, branch, who):
    a = customer("5")
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    user = make_staff(Role.OPERATOR) if who == "operator" else make_staff(Role.ADMIN, branches=[branch])
    with pytest.raises(PermissionDenied):
        _compensate(incident, 3, user)
    assert _written() == (0, 0, 0)
    assert get_balance(a).balance == D("400.00")


@pytest.mark.django_db
def test_a_terminated_subscription_and_no_plan_get_nothing(customer, open_incident, admin):
    from abonent.billing import actions as billing

    paying, ended, no_plan = customer("5"), customer("6"), customer("7", subscribe=False)
    with clock.travel_to(dt.date(2026, 11, 10)):
        billing.do_terminate_subscription(ended.subscriptions.get(), reason="переезд", acting_user=admin)
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])
    compensation, _created = _compensate(incident, 3, admin)
    assert {line.subscriber_id for line in compensation.lines.all()} == {paying.pk}
    assert compensation.total == D("60.00")
    assert get_balance(no_plan).balance == D("0.00")
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_credited_once_when_run_concurrently(customer, open_incident, admin):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: row locks between two connections")
    # Given a resolved incident over three subscribers
    subscribers = [customer(h) for h in ("1", "2", "3")]
    incident = _resolved(open_incident, admin, areas=[LENINA_1_12])

    # When two requests compensate it at the same moment
    def go():
        compensation, created = _compensate(incident, 5, admin)
        return compensation.pk, created

    out = together(go, go, go)

    # Then one created it, the others got the same one back, and each subscriber was credited 100.00 once
    assert sorted(created for _pk, created in out) == [False, False, True], out
    assert len({pk for pk, _created in out}) == 1
    assert [get_balance(s).balance for s in subscribers] == [D("500.00")] * 3
    assert _written() == (1, 3, 3)
    assert ledger.verify() == []
