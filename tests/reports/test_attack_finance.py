"""Attack review of the finance pages (abonent/reports), the run records and the keyset lists and exports.

Tests marked ``FAILS`` in their docstring fail on the code as built (a defect); the others are defences that hold.
"""

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from abonent.billing import actions as billing
from abonent.billing.models import BillingRunRecord, LedgerAccount, LedgerVerification
from abonent.core import clock
from abonent.dunning.evaluation import evaluate
from abonent.reports import receivables
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_close_subscriber

D = Decimal
pytestmark = pytest.mark.django_db
TODAY = dt.date(2027, 4, 30)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def adjust(subscriber, amount, day, admin, *, evaluated=False):
    with clock.travel_to(dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.UTC)):
        billing.do_adjust_balance(subscriber, amount=D(amount), reason="test", acting_user=admin)
        if evaluated:
            evaluate([subscriber.pk])


@pytest.fixture(autouse=True)
def _today():
    with clock.travel_to(dt.datetime.combine(TODAY, dt.time(12, 0), tzinfo=dt.UTC)):
        yield


# --- run records and verifications ---------------------------------------------------------------------------


def test_a_run_that_died_is_not_shown_running_forever(admin):
    """FAILS. A run killed mid-way (SIGKILL, OOM, a lost database connection: ``recording.fail`` never runs) leaves
    its ``BillingRunRecord`` "running"; nothing ever marks it lost (billing/runs/recording.py has no staleness rule,
    unlike verification.STALE_AFTER), and the runs page shows a run of three days ago as "Running"."""
    BillingRunRecord.objects.create(
        as_of=dt.date(2027, 4, 27), status="running", started_at=dt.datetime(2027, 4, 27, 0, 5, tzinfo=dt.UTC)
    )
    html = client_for(admin).get(reverse("reports:billing_runs")).content.decode()
    assert ">Running<" not in html


def test_a_verification_that_died_is_not_shown_running_forever(admin):
    """FAILS. The same for a ledger verification whose worker died: past ``STALE_AFTER`` a new one may be queued,
    but the dead row stays "running" on the ledger page for good (billing/runs/verification.py)."""
    LedgerVerification.objects.create(
        status="running",
        source="console",
        requested_by=admin,
        created_at=dt.datetime(2027, 4, 27, 3, 0, tzinfo=dt.UTC),
        started_at=dt.datetime(2027, 4, 27, 3, 0, tzinfo=dt.UTC),
    )
    html = client_for(admin).get(reverse("reports:ledger")).content.decode()
    assert ">Running<" not in html


# --- receivables against the ledger --------------------------------------------------------------------------


def test_a_credit_limit_removed_mid_debt_does_not_move_the_debts_start(make_subscriber, admin):
    """FAILS. "In debt since" takes dunning's ``restricted_since`` whenever the credit limit is 0 *now*
    (reports/receivables.py ``debtors``). A subscriber below zero since 10 February with a limit of 100, restricted
    on 1 April, whose limit is then removed: the episode (started 1 April) goes on, so the page says 1 April (0–30
    days) where the ledger says 10 February (61–90 days)."""
    person = make_subscriber(last_name="Limit", phone="+79161119999")
    with clock.travel_to(dt.datetime(2027, 1, 5, 9, 0, tzinfo=dt.UTC)):
        billing.do_set_credit_limit(person, amount=D("100.00"), reason="test", acting_user=admin)
    adjust(person, "-50.00", dt.date(2027, 2, 10), admin, evaluated=True)
    adjust(person, "-100.00", dt.date(2027, 4, 1), admin, evaluated=True)
    with clock.travel_to(dt.datetime(2027, 4, 20, 9, 0, tzinfo=dt.UTC)):
        billing.do_set_credit_limit(person, amount=D("0.00"), reason="test", acting_user=admin)
        evaluate([person.pk])
    row = receivables.debtors(admin, today=TODAY).get(subscriber=person)
    assert row.debt_since == dt.date(2027, 2, 10)


def test_totals_are_the_ledgers_with_a_closed_debtor_and_a_reversed_payment(make_subscriber, admin):
    """Holds: every account below zero is counted once, a closed subscriber's debt included; the total debt is
    minus the sum of the negative balances."""
    closed = make_subscriber(last_name="Closed", phone="+79161110101")
    adjust(closed, "-200.00", dt.date(2027, 3, 1), admin)
    with clock.travel_to(dt.datetime(2027, 3, 2, 9, 0, tzinfo=dt.UTC)):
        do_close_subscriber(closed, reason="gone", acting_user=admin)
    reversed_ = make_subscriber(last_name="Reversed", phone="+79161110102")
    adjust(reversed_, "-300.00", dt.date(2027, 4, 1), admin)
    adjust(reversed_, "300.00", dt.date(2027, 4, 5), admin)
    adjust(reversed_, "-300.00", dt.date(2027, 4, 6), admin)  # the payment taken back
    totals = receivables.ageing(admin, today=TODAY)
    negative = LedgerAccount.objects.filter(kind="subscriber", balance__lt=0)
    assert totals.total.count == negative.count() == 2
    assert totals.total.debt == -sum(a.balance for a in negative) == D("500.00")
    row = receivables.debtors(admin, today=TODAY).get(subscriber=reversed_)
    assert row.debt_since == dt.date(2027, 4, 6)


# --- roles and methods ---------------------------------------------------------------------------------------

GET_URLS = [
    ("reports:receivables", {}),
    ("reports:receivables_export", {"format": "csv"}),
    ("reports:billing_runs", {}),
    ("reports:billing_runs_export", {"format": "xlsx"}),
    ("reports:ledger", {}),
]


@pytest.mark.parametrize("role", [Role.CASHIER, Role.SUPPORT, Role.ENGINEER])
def test_roles_without_finance_view_get_403_on_every_finance_url(role, make_staff):
    """Holds."""
    client = client_for(make_staff(role))
    for name, params in GET_URLS:
        assert client.get(reverse(name), params).status_code == 403, name
    record = BillingRunRecord.objects.create(as_of=TODAY, status="finished", started_at=clock.now())
    assert client.get(reverse("reports:billing_run", args=[record.pk])).status_code == 403
    assert client.post(reverse("reports:ledger_verify")).status_code == 403
    assert not LedgerVerification.objects.exists()


def test_verify_now_is_admin_only_and_post_only(operator, admin):
    """Holds: the operator sees the ledger page but may not queue; a GET never queues."""
    assert client_for(operator).post(reverse("reports:ledger_verify")).status_code == 403
    assert client_for(admin).get(reverse("reports:ledger_verify")).status_code == 405
    assert not LedgerVerification.objects.exists()
    client = client_for(admin)
    client.post(reverse("reports:ledger_verify"))
    client.post(reverse("reports:ledger_verify"))
    assert LedgerVerification.objects.count() == 1


# --- tampered cursors, sorts, absurd filters -----------------------------------------------------------------

LISTS = [
    "reports:receivables",
    "reports:billing_runs",
    "reports:ledger",
    "payments:journal",
    "catalog:plans",
    "documents:list",
    "helpdesk:list",
]


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


TAMPERED = [
    "not-base64!!",
    _cursor({"v": ["'; DROP TABLE x; --", 1]}),
    _cursor(["9999-99-99", "abc"]),
    _cursor([None, None]),
    _cursor({"a": 1}),
    _cursor(["1e309", 10**30]),
    "A" * 5000,
    "\x00",
]


@pytest.mark.parametrize("name", LISTS)
def test_tampered_cursors_and_sorts_never_500(name, admin, make_subscriber):
    """Holds unless a 500: junk cursors, sorts outside the whitelist, absurd dates."""
    adjust(make_subscriber(phone="+79161110200"), "-10.00", dt.date(2027, 4, 1), admin)
    client = client_for(admin)
    for cursor in TAMPERED:
        assert client.get(reverse(name), {"cursor": cursor}).status_code < 500, cursor
    for sort in ["password", "-subscriber__passport_number", "id;drop", "--amount", "\x00", "x" * 3000]:
        assert client.get(reverse(name), {"sort": sort}).status_code < 500, sort
    for day in ["99999-01-01", "0001-01-01", "2027-02-30", "-1"]:
        response = client.get(reverse(name), {"date_from": day, "date_to": "0001-01-01", "q": "\x00" * 3})
        assert response.status_code < 500, day


@pytest.mark.parametrize(
    "name", ["reports:receivables_export", "payments:journal_export", "catalog:plans_export", "helpdesk:export"]
)
def test_exports_with_junk_parameters_never_500(name, admin):
    """Holds unless a 500."""
    client = client_for(admin)
    for params in ({"format": "csv", "sort": "nope"}, {"format": "doc"}, {"format": "xlsx", "date_from": "99999-1-1"}):
        response = client.get(reverse(name), params)
        assert response.status_code < 500, params
