"""The network app's periodic jobs: sending the CoA/Disconnect queue, closing sessions whose Stop was lost, telling
the NAS when a subscriber's access state changes or the traffic quota is crossed, and sampling the NAS and pools
for monitoring.

The scheduler runs a job at most once a minute, so a CoA waits up to a minute here; where that is too slow
(a plan upgrade the subscriber is watching), run ``abonent coa send --loop`` beside the worker.
"""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic

# One job run drains the queue batch by batch, but hands the worker back well before the next slot.
SEND_BUDGET_S = 40


@periodic("network.send_coa", every=dt.timedelta(minutes=1))
@task(queue_name="network")
def send_coa() -> dict:
    from abonent.core.queues import drain

    from .coa import DEFAULT_BATCH, send_due

    return drain(lambda n: send_due(limit=n), limit=DEFAULT_BATCH, budget_s=SEND_BUDGET_S)


@periodic("network.sweep_stale_sessions", every=dt.timedelta(minutes=5))
@task(queue_name="network")
def sweep_stale_sessions() -> int:
    from .accounting import sweep_stale_sessions as sweep

    return sweep()


@periodic("network.sync_access_states", every=dt.timedelta(minutes=1))
@task(queue_name="network")
def sync_access_states(subscriber_ids: list[int] | None = None) -> dict:
    """The access states dunning keeps changed: the payment-page redirect on or off, a Disconnect for a subscriber
    denied access, for the sessions online. Every minute over everyone; with ``subscriber_ids`` when an event's
    own run (``network.events``) could not wait for another one to finish."""
    from .access import sync_access_states as sync

    return sync(subscriber_ids)


@periodic("network.sync_fup_speeds", every=dt.timedelta(minutes=1))
@task(queue_name="network")
def sync_fup_speeds() -> dict:
    """A subscriber crossed the traffic quota, or is back under it: switch the open sessions' speed."""
    from .actions import sync_fup_speeds as sync

    return sync()


@periodic("network.prune_auth_attempts", daily_at=dt.time(4, 15))
@task(queue_name="network")
def prune_auth_attempts() -> int:
    """Delete authentication attempts older than ``ABONENT_RADIUS_ATTEMPT_DAYS``: the log answers recent
    questions ("why can't this subscriber connect?"), and a flood must not stay in the database for good."""
    from django.conf import settings

    from .actions import do_prune_auth_attempts

    return do_prune_auth_attempts(older_than=dt.timedelta(days=settings.ABONENT_RADIUS_ATTEMPT_DAYS))


@periodic("network.sample_network", every=dt.timedelta(minutes=5))
@task(queue_name="network")
def sample_network() -> dict:
    """Monitoring: a sample of every NAS (sessions, traffic, authentications, CoA failures), the pools' use, the
    newest accounting of each NAS (silent NAS); samples past ``ABONENT_NETWORK_SAMPLE_DAYS`` pruned."""
    from .monitoring.sampler import take_samples

    run = take_samples()
    return {"taken_at": run.taken_at.isoformat(), "samples": run.samples, "pools": run.pools, "pruned": run.pruned}
