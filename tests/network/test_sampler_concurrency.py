"""Two monitoring samplers started together on PostgreSQL (two workers, a manual run beside the scheduled one):
both read that a NAS and a pool have no health or usage row yet; the second must not fail on the first's insert."""

import contextlib
import threading

import pytest
from django.db import connection

from abonent.core import clock
from abonent.network.models import IpPool, NasHealth, NasSample, PoolUsage
from abonent.network.monitoring import sampler

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("two connections writing at once need PostgreSQL (SQLite lets one writer in at a time)")


def test_two_samplers_started_together_both_finish_with_one_row_each(make_nas, monkeypatch):
    nas = make_nas()
    pool = IpPool.objects.create(name="main", network="100.64.0.0/24")
    original = sampler._session_figures
    # Each run waits here for the other, once it has read the rows it will write: without serialising, both read
    # "no NasHealth yet" and both insert it. Serialised, the second waits for the lock and the meeting times out.
    barrier = threading.Barrier(2, timeout=2)

    def figures_then_meet(since):
        figures = original(since)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return figures

    monkeypatch.setattr(sampler, "_session_figures", figures_then_meet)
    now = clock.now()
    errors, runs = [], []

    def run(moment):
        try:
            runs.append(sampler.take_samples(moment))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(now,)), threading.Thread(target=run, args=(now,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(runs) == 2
    assert NasHealth.objects.filter(nas=nas).count() == 1
    assert NasHealth.objects.get(nas=nas).sampled_at == now
    assert NasSample.objects.filter(nas=nas).count() == 1
    assert PoolUsage.objects.filter(pool=pool).count() == 1
