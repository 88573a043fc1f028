"""Draining a queue batch by batch (core.queues): what the CoA queue and the notification outbox share."""

import pytest

from abonent.core import queues


class FakeQueue:
    """``due`` items; each ``send(limit)`` takes up to ``limit`` of them."""

    def __init__(self, due: int, *, interrupt_after: int | None = None):
        self.due, self.calls, self.interrupt_after = due, [], interrupt_after

    def send(self, limit: int) -> dict[str, int]:
        if self.interrupt_after is not None and len(self.calls) == self.interrupt_after:
            raise KeyboardInterrupt
        taken = min(limit, self.due)
        self.due -= taken
        self.calls.append(taken)
        return {"sent": taken} if taken else {}


def test_drain_sends_until_a_batch_comes_back_short():
    queue = FakeQueue(25)
    assert queues.drain(queue.send, limit=10, budget_s=60) == {"sent": 25}
    assert queue.calls == [10, 10, 5]


def test_drain_stops_at_its_budget_with_the_rest_still_due():
    queue = FakeQueue(1000)
    assert queues.drain(queue.send, limit=10, budget_s=0) == {}
    assert queue.due == 1000


def test_send_loop_once_reports_one_batch():
    queue, reports = FakeQueue(25), []
    queues.send_loop(queue.send, limit=10, loop=False, interval=0, report=reports.append)
    assert reports == [{"sent": 10}] and queue.due == 15


@pytest.mark.django_db
def test_send_loop_keeps_sending_until_interrupted_and_reports_only_batches_with_something():
    queue, reports = FakeQueue(25, interrupt_after=5), []
    queues.send_loop(queue.send, limit=10, loop=True, interval=0, report=reports.append)
    assert reports == [{"sent": 10}, {"sent": 10}, {"sent": 5}]
    assert queue.due == 0 and len(queue.calls) == 5
