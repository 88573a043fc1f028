"""Two senders at once never send one delivery twice (SKIP LOCKED on PostgreSQL, the conditional claim on both)."""

import threading
from collections import Counter

import pytest
from django.db import connection

from abonent.integrations.webhooks import events, sending
from abonent.integrations.webhooks.models import Delivery, DeliveryStatus, EventType

N = 40


@pytest.mark.django_db(transaction=True)
def test_two_senders_never_send_one_delivery_twice(hook, httpserver, received):
    if connection.vendor != "postgresql":
        # The test database of SQLite is in memory with a shared cache: its table locks refuse a second writer
        # at once instead of waiting. Several workers are a PostgreSQL deployment.
        pytest.skip("two concurrent senders need PostgreSQL")
    hook(types=[EventType.PAYMENT_RECEIVED])
    httpserver.expect_request("/crm/hook").respond_with_data("ok")
    items = [(f"payment.received:test-{n}", {"payment": {"id": n}}) for n in range(N)]
    assert events.enqueue(EventType.PAYMENT_RECEIVED, items) == N

    barrier = threading.Barrier(2)
    errors = []

    def sender():
        try:
            barrier.wait(5)
            while sending.send_due(limit=3):
                pass
        except Exception as error:  # surfaced below: a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    sent = Counter(headers["Abonent-Event-Id"] for headers, _body, _json in received())
    assert len(sent) == N
    assert set(sent.values()) == {1}
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == N
