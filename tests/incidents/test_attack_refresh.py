"""Attack review of the periodic refresh: one incident whose row is held (a long edit or compensation) must not stop
the refresh of the others in the same run."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction

from abonent.core import clock, deadlines
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.models import Incident, IncidentSubscriber
from abonent.helpdesk.incidents.tasks import refresh_affected

from .conftest import START, online


@pytest.mark.django_db(transaction=True)
def test_a_busy_incident_does_not_stop_the_refresh_of_the_others(customer, nas, other_nas, open_incident, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: a row lock held by another connection")
    # Given two open incidents, on two NAS; later, a subscriber connects to each
    busy, quiet = open_incident(nas=[nas], title="Занятый"), open_incident(nas=[other_nas], title="Тихий")
    one, two = customer("1"), customer("2")
    online(one, nas, at=START + dt.timedelta(hours=1))
    online(two, other_nas, at=START + dt.timedelta(hours=1))
    monkeypatch.setattr(actions, "db_deadline", lambda **kw: deadlines.db_deadline(lock=0.5, statement=10))
    locked, release = threading.Event(), threading.Event()

    def hold():  # someone editing the first incident for a long time
        try:
            with transaction.atomic():
                Incident.objects.select_for_update().get(pk=busy.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        with clock.travel_to(START + dt.timedelta(hours=2)):
            refreshed = refresh_affected.call()
    finally:
        release.set()
        holder.join(10)

    # Then the run skipped the busy one (the next run does it) and refreshed the other
    assert refreshed == 1
    assert set(IncidentSubscriber.objects.filter(incident=quiet).values_list("subscriber_id", flat=True)) == {two.pk}
    assert not IncidentSubscriber.objects.filter(incident=busy).exists()
