"""``POST /api/v1/usage-records``: collectors' traffic added once per record, whole batches refused on bad input."""

import datetime as dt

import pytest
from django.utils import timezone

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network.accounting import MAX_COUNTER
from abonent.network.models import Session, UsageDay, UsageRecord
from abonent.network.usage_records import MAX_BATCH
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db

NOV_20 = dt.date(2026, 11, 20)
NOON = timezone.make_aware(dt.datetime(2026, 11, 20, 12, 0))


@pytest.fixture
def session(customer, make_nas):
    nas = make_nas("mikrotik")
    login = customer.network_logins.get()
    return Session.objects.create(
        nas=nas,
        unique_id="u-1",
        acct_session_id="81a00003",
        login=login,
        subscriber=customer,
        username=login.username,
        started_at=NOON - dt.timedelta(hours=3),
        updated_at=NOON,
    )


def record(of, n=1, **fields):
    body = {
        "source": "netflow-1",
        "record_id": f"r-{n}",
        "session": {"id": of.pk},
        "day": "2026-11-19",
        "input_octets": 1_000,
        "output_octets": 50_000,
    }
    body.update(fields)
    return body


def post(api, records):
    with clock.travel_to(NOON):
        return api.post("/api/v1/usage-records", {"records": records})


def day_totals(subscriber, day=dt.date(2026, 11, 19)):
    row = UsageDay.objects.filter(subscriber=subscriber, day=day).first()
    return (row.input_octets, row.output_octets) if row else None


def codes(response):
    return sorted((f["field"], f["code"]) for f in response.json()["error"]["fields"])


def test_records_added_to_the_day_and_a_resend_adds_nothing(api, session, customer):
    by_nas = record(session, 2, session={"nas_id": session.nas_id, "acct_session_id": "81a00003"})
    response = post(api, [record(session), by_nas])
    assert response.status_code == 200, response.json()
    assert response.json() == {"received": 2, "added": 2, "duplicates": 0}
    assert day_totals(customer) == (2_000, 100_000)
    again = post(api, [record(session), by_nas, record(session, 3)])
    assert again.json() == {"received": 3, "added": 1, "duplicates": 2}
    assert day_totals(customer) == (3_000, 150_000)
    assert UsageRecord.objects.count() == 3
    assert AuditEvent.objects.filter(action="network.usage_records_added").count() == 2


def test_the_same_record_twice_in_a_batch_counts_once(api, session, customer):
    response = post(api, [record(session), record(session)])
    assert response.json() == {"received": 2, "added": 1, "duplicates": 1}
    assert day_totals(customer) == (1_000, 50_000)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"input_octets": -1}, [("records.1.input_octets", "negative")]),
        ({"output_octets": MAX_COUNTER + 1}, [("records.1.output_octets", "too_large")]),
        ({"day": "2026-11-21"}, [("records.1.day", "future")]),
        ({"session": {"id": 999_999}}, [("records.1.session", "unknown_session")]),
        ({"session": {"nas_id": 1}}, [("records.1.session", "required")]),
        ({"session": {"nas_id": 999, "acct_session_id": "x"}}, [("records.1.session", "unknown_session")]),
        ({"source": ""}, [("records.1.source", "invalid")]),
        ({"record_id": "r-1", "input_octets": 5}, [("records.1.record_id", "duplicate")]),
        ({"day": "2026-10-10"}, [("records.1.day", "out_of_window")]),  # past the rating's 40-day lookback
        ({"day": "2026-11-18"}, [("records.1.day", "out_of_window")]),  # two days before the session started
    ],
)
def test_bad_input_refuses_the_whole_batch(api, session, customer, fields, expected):
    response = post(api, [record(session), record(session, 2, **fields)])
    assert response.status_code == 422
    assert codes(response) == expected
    assert day_totals(customer) is None and not UsageRecord.objects.exists()


def test_counter_at_the_limit_saturates_the_day(api, session, customer):
    post(api, [record(session, 1, output_octets=MAX_COUNTER)])
    post(api, [record(session, 2, output_octets=10)])
    assert day_totals(customer) == (2_000, MAX_COUNTER)


def test_a_batch_over_the_limit_is_refused(api, session, customer):
    response = post(api, [record(session, n) for n in range(MAX_BATCH + 1)])
    assert response.status_code == 422
    assert codes(response) == [("records", "too_many")]
    assert not UsageRecord.objects.exists()


def test_a_wrong_type_is_a_422_not_a_500(api, session):
    response = post(api, [record(session, input_octets="lots")])
    assert response.status_code == 422
    assert codes(response) == [("records.0.input_octets", "int_parsing")]


def test_only_network_managers_may_send(api_of, session, customer):
    assert post(api_of(Role.CASHIER), [record(session)]).status_code == 403
    assert post(api_of(Role.ENGINEER), [record(session)]).status_code == 200
    assert day_totals(customer) == (1_000, 50_000)


def test_a_record_id_resent_with_other_traffic_is_a_conflict(api, session, customer):
    assert post(api, [record(session, 1)]).status_code == 200
    response = post(api, [record(session, 2), record(session, 1, output_octets=7)])
    assert response.status_code == 422
    assert codes(response) == [("records.1.record_id", "record_id_conflict")]
    assert day_totals(customer) == (1_000, 50_000) and UsageRecord.objects.count() == 1
