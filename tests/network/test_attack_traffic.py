# ruff: noqa: F401, F811 - the fixture "session" is imported from the records API tests
"""Attack on the collectors' input (POST /api/v1/usage-records): what the traffic rating charges from."""

import contextlib
import datetime as dt

import pytest
from django.db import connection

from abonent.network.models import UsageDay
from abonent.staff.permissions import Role
from tests.network.test_usage_records_api import day_totals, post, record, session

pytestmark = pytest.mark.django_db


def test_the_same_record_id_resent_with_other_counters_is_refused_not_swallowed(api, session, customer):
    assert post(api, [record(session, 1, output_octets=50_000)]).status_code == 200
    # A collector restarted and reused its record ids: the same key, other traffic.
    response = post(api, [record(session, 1, output_octets=9_000_000)])
    # Correct: a conflict the collector is told about (409/422 with a field code), not 200 "duplicates: 1".
    assert response.status_code in (409, 422), response.json()


def test_a_branch_limited_engineer_cannot_add_traffic_to_another_branchs_subscriber(
    api_of,
    session,
    customer,
    other_branch,
):
    # customer is in the fixture's branch; the engineer may only work in Клин.
    response = post(api_of(Role.ENGINEER, branches=[other_branch]), [record(session)])
    assert response.status_code in (403, 404, 422)
    assert not UsageDay.objects.filter(subscriber=customer).exists()


def test_a_day_before_the_subscriber_existed_is_refused(api, session, customer):
    response = post(api, [record(session, 1, day="1900-01-01")])
    assert response.status_code == 422
    assert not UsageDay.objects.filter(subscriber=customer, day=dt.date(1900, 1, 1)).exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="two connections at once: PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_two_collectors_at_once_for_a_new_day_both_add_their_traffic(session, customer, admin, monkeypatch):
    """Two collectors (netflow-1, iptv-1) send the same subscriber's first traffic of a day at the same time: the
    day's row does not exist yet, both find nothing to UPDATE and both INSERT it."""
    import threading

    from abonent.core import clock
    from abonent.network import usage_records
    from abonent.network.usage_records import UsageRecordData, do_add_usage_records

    original = usage_records._insert
    barrier = threading.Barrier(2, timeout=5)

    def insert_then_meet(rows, now):
        added = original(rows, now)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return added

    monkeypatch.setattr(usage_records, "_insert", insert_then_meet)
    day = dt.date(2026, 11, 19)
    errors, results = [], {}

    def send(source: str, size: int) -> None:
        try:
            with clock.travel_to(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)):
                results[source] = do_add_usage_records(
                    [UsageRecordData(source, "1", day, 0, size, session_id=session.pk)], acting_user=admin
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=("netflow-1", 1_000)),
        threading.Thread(target=send, args=("iptv-1", 2_000)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert day_totals(customer, day) == (0, 3_000)
