"""The authentication attempt log is bounded (attemptlog.py): per minute at most three rows per NAS, login and
reason and a cap in all, the rest counted as ``auth_attempts_dropped``; and the worker deletes rows older than
``ABONENT_RADIUS_ATTEMPT_DAYS``. A flood of bad logins cannot fill the database."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.conf import settings
from django.utils import timezone

from abonent.core import clock
from abonent.core.scheduler import registered_jobs
from abonent.network import actions as network
from abonent.network import tasks
from abonent.network.models import AuthAttempt, AuthOutcome, RejectReason
from abonent.network.policy import PolicyStore
from abonent.network.radius.attemptlog import PER_KEY, AttemptBudget
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry
from abonent.network.radius.ratelimit import BadAuthLimiter
from abonent.network.radius.runner import Maintenance

from .packets import NAS_ADDR, pap_request

pytestmark = pytest.mark.django_db

FLOOD = 100_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def minute():
    return Clock()


@pytest.fixture
def flooded(customer, make_nas, minute):
    """A server with the rate limits off, so every bad login of a flood reaches the attempt log."""
    store = PolicyStore()
    store.load_all()
    return RadiusServer(
        store=store,
        nas_table={"127.0.0.1": NasEntry.from_model(make_nas())},
        limiter=BadAuthLimiter(0, 0),
        attempt_budget=AttemptBudget(settings.ABONENT_RADIUS_ATTEMPTS_PER_MINUTE, clock=minute),
    )


def flush(server: RadiusServer) -> None:
    """What the maintenance thread does every two seconds: write the waiting attempts to the database."""
    Maintenance(server, writer=None, snapshot=None, node="test")._flush_attempts()


def test_a_flood_of_bad_logins_writes_at_most_the_cap(flooded):
    cap = settings.ABONENT_RADIUS_ATTEMPTS_PER_MINUTE
    # given a flood of bad logins within one minute: random names, and guesses at one real login
    for i in range(FLOOD // 2):
        assert flooded.handle_auth(pap_request(i % 256, uuid.uuid4().hex, "guess"), NAS_ADDR)[0] == 3
        assert flooded.handle_auth(pap_request(i % 256, "ivanov", f"guess{i}"), NAS_ADDR)[0] == 3
    flush(flooded)
    # then random names are written up to the cap, and three of the real login's beside them (a budget of its
    # own: the flood cannot hide them)
    assert flooded.stats.total("rejects_unknown_login") == flooded.stats.total("rejects_bad_password") == FLOOD // 2
    assert AuthAttempt.objects.count() == cap + PER_KEY
    assert AuthAttempt.objects.filter(username="ivanov").count() == PER_KEY
    assert flooded.stats.total("auth_attempts_dropped") == FLOOD - cap - PER_KEY
    assert flooded.attempts == []


def test_the_next_minute_is_written_again(flooded, minute):
    for i in range(5):
        flooded.handle_auth(pap_request(i, "ivanov", "guess"), NAS_ADDR)
    minute.now += 60.0
    for i in range(5):
        flooded.handle_auth(pap_request(i, "ivanov", "guess"), NAS_ADDR)
    flush(flooded)
    assert AuthAttempt.objects.count() == 2 * PER_KEY
    assert flooded.stats.total("auth_attempts_dropped") == 2 * (5 - PER_KEY)


def test_the_budget_table_holds_no_more_keys_than_the_cap():
    budget = AttemptBudget(per_window=100, per_key=3, clock=lambda: 0.0)
    admitted = sum(budget.admit(("nas", uuid.uuid4().hex, "reject", "unknown_login")) for _ in range(10_000))
    assert admitted == 100
    assert len(budget.counts) == 100


def test_old_attempts_are_deleted_by_the_worker(customer, make_nas, monkeypatch):
    nas = make_nas()
    now = timezone.make_aware(dt.datetime(2026, 3, 1, 4, 15))
    days = settings.ABONENT_RADIUS_ATTEMPT_DAYS

    def attempt(age: dt.timedelta) -> AuthAttempt:
        return AuthAttempt(
            created_at=now - age,
            nas=nas,
            username="ivanov",
            subscriber=customer,
            outcome=AuthOutcome.REJECT,
            reason=RejectReason.BAD_PASSWORD,
        )

    old = [attempt(dt.timedelta(days=days, minutes=i + 1)) for i in range(25)]
    recent = [attempt(dt.timedelta(days=days) - dt.timedelta(minutes=1)), attempt(dt.timedelta(hours=1))]
    AuthAttempt.objects.bulk_create(old + recent)
    monkeypatch.setattr(network, "PRUNE_BATCH", 10)  # three batches
    with clock.travel_to(now):
        assert tasks.prune_auth_attempts.call() == 25
        assert tasks.prune_auth_attempts.call() == 0
    assert sorted(AuthAttempt.objects.values_list("created_at", flat=True)) == sorted(a.created_at for a in recent)
    job = registered_jobs()["network.prune_auth_attempts"]
    assert (job.task, job.daily_at) == (tasks.prune_auth_attempts, dt.time(4, 15))
