"""Time rating run by several workers at once: each part of a session is charged once (PostgreSQL)."""

import threading

import pytest
from django.db import connection

from abonent.billing.ledger import verify
from abonent.billing.models import TimeRating
from abonent.billing.testing import balance

from .time_helpers import D, local, rate, session, time_charges

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")


def test_two_passes_at_once_charge_each_part_once(on_time, subscriber, nas):
    for day in range(10, 20):
        session(nas, subscriber, local(2026, 11, day, 23, 30), local(2026, 11, day + 1, 0, 30))
    barrier = threading.Barrier(3)
    errors = []

    def worker():
        try:
            barrier.wait()
            rate(local(2026, 11, 25, 0, 0))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert TimeRating.objects.count() == 20
    assert len(time_charges(on_time)) == 20
    assert balance(subscriber) == D("500.00") - D("600.00")
    assert verify() == []
