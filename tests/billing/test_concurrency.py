"""Billing runs in separate processes against PostgreSQL: concurrent, killed midway, retried.

Each case ends with the ledger a single clean run would have written: every due period charged once,
with the amounts the engine's pricing gives, and ``abonent ledger verify`` passing.
"""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from abonent.billing.ledger import verify
from abonent.billing.models import Charge, Subscription
from abonent.billing.periods import amount_for, period_for
from abonent.catalog.selectors import price_on

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DAY = dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("separate processes sharing one database need PostgreSQL")


@pytest.fixture
def population(db):
    """``n`` seeded subscribers (the seed's plan mix, a third of them daily), every one due on DAY."""

    def make(n: int) -> list[Subscription]:
        with open(os.devnull, "w") as quiet:
            call_command("seed", subscribers=n, stdout=quiet, stderr=quiet)
        Subscription.objects.update(next_charge_on=DAY, status="active")
        subscriptions = list(Subscription.objects.select_related("plan"))
        assert len(subscriptions) == n
        return subscriptions

    return make


def billing_run(*extra: str) -> subprocess.Popen:
    name = connection.settings_dict["NAME"]
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"}
    return subprocess.Popen(
        [sys.executable, "-m", "abonent.cli", "billing", "run", "--date", DAY.isoformat(), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expected_total(subscriptions) -> Decimal:
    total = Decimal("0.00")
    for s in subscriptions:
        start, end, full = period_for(s.plan, DAY, s.anchor_day)
        total += amount_for(s.plan, price_on(s.plan, DAY), start, end, full)[0]
    return total


def assert_charged_exactly_once(subscriptions):
    charges = Charge.objects.filter(kind="fee", period_start=DAY)
    assert charges.count() == len(subscriptions)
    assert sorted(charges.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)
    assert sum(charges.values_list("amount", flat=True)) == expected_total(subscriptions)
    assert not Subscription.objects.filter(next_charge_on__lte=DAY).exists()
    assert verify() == []


def test_two_runs_started_together_charge_each_period_once(population):
    subscriptions = population(600)
    first, second = billing_run("--chunk-size", "40"), billing_run("--chunk-size", "40")
    for process in (first, second):
        _out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
    assert_charged_exactly_once(subscriptions)


def test_a_run_killed_midway_and_restarted_gives_the_clean_ledger(population):
    subscriptions = population(3000)
    process = billing_run("--chunk-size", "10")
    deadline = time.monotonic() + 120
    while Charge.objects.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    charged_at_kill = Charge.objects.count()
    assert 0 < charged_at_kill < len(subscriptions), "the run was not interrupted midway"
    assert verify() == []  # what was committed is whole: no half-written chunk

    rerun = billing_run("--chunk-size", "500")
    _out, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err
    assert_charged_exactly_once(subscriptions)

    again = billing_run()
    out, _err = again.communicate(timeout=120)
    assert again.returncode == 0 and ": 0 charges" in out  # a rerun of the same date writes nothing
