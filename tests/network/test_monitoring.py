"""Monitoring: the sampler's samples (sessions, traffic, authentications, CoA failures) and their pruning, the newest
accounting of each NAS, silent NAS, the pools' use and its thresholds, and ``/metrics``."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import INTERIM, START, STOP, AcctRecord, sweep_stale_sessions, write_batch
from abonent.network.models import (
    CoaReason,
    CoaRequest,
    CoaStatus,
    IpPool,
    NasHealth,
    NasSample,
    PoolUsage,
    RadiusNode,
    Session,
)
from abonent.network.monitoring.health import PoolLevel, is_silent, pool_fill, pool_level, silent_after
from abonent.network.monitoring.models import pool_size
from abonent.network.monitoring.sampler import prune_samples, take_samples

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def rec(nas, status, *, t=0, unique="u1", i=0, o=0, sub=None, ip=None):
    return AcctRecord(
        status=status,
        nas_id=nas.pk,
        event_time=T0 + dt.timedelta(seconds=t),
        unique_id=unique,
        acct_session_id="s-" + unique,
        username="ivanov",
        subscriber_id=sub,
        framed_ip=ip,
        session_time=t,
        input_octets=i,
        output_octets=o,
    )


def publish(node: str, started: dt.datetime, counters: dict):
    RadiusNode.objects.update_or_create(
        node=node, defaults={"started_at": started, "updated_at": started, "counters": counters}
    )


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# --- the sampler ---------------------------------------------------------------------------------------------


def test_the_sampler_writes_a_sample_per_nas_with_sessions_traffic_and_the_newest_accounting(make_nas, customer):
    busy = make_nas(interim_interval=300)
    idle = make_nas(name="idle", ip_address="10.0.0.9")
    write_batch(
        [
            rec(busy, START, unique="a", sub=customer.pk),
            rec(busy, INTERIM, t=240, unique="a", i=1_000, o=50_000, sub=customer.pk),
            rec(busy, START, t=60, unique="b"),
            rec(busy, INTERIM, t=200, unique="b", i=300, o=7_000),
        ]
    )

    run = take_samples(at(300))

    assert (run.samples, run.pools) == (2, 0)
    sample = NasSample.objects.get(nas=busy)
    # Each session's last interim within the five minutes since (the first run looks back five minutes).
    assert (sample.taken_at, sample.interval_seconds, sample.open_sessions) == (at(300), 300, 2)
    assert (sample.input_octets, sample.output_octets) == (1_300, 57_000)
    assert NasSample.objects.get(nas=idle).open_sessions == 0
    health = NasHealth.objects.get(nas=busy)
    assert (health.open_sessions, health.last_accounting_at, health.sampled_at) == (2, at(240), at(300))


def test_traffic_is_scaled_by_the_interims_a_short_interval_nas_sends_between_samples(make_nas):
    nas = make_nas(interim_interval=60)
    take_samples(at(0))  # the previous run
    write_batch([rec(nas, START, t=10), rec(nas, INTERIM, t=250, i=100, o=1_000)])

    take_samples(at(300))

    # Five interims a minute apart fall in five minutes; the row keeps only the last one's growth.
    sample = NasSample.objects.get(nas=nas, taken_at=at(300))
    assert (sample.input_octets, sample.output_octets) == (500, 5_000)


def test_a_session_not_updated_since_the_last_sample_adds_no_traffic(make_nas):
    nas = make_nas(interim_interval=300)
    write_batch([rec(nas, START), rec(nas, INTERIM, t=100, i=100, o=1_000)])
    take_samples(at(200))

    take_samples(at(500))

    later = NasSample.objects.get(nas=nas, taken_at=at(500))
    assert (later.open_sessions, later.input_octets, later.output_octets, later.interval_seconds) == (1, 0, 0, 300)


def test_authentications_are_the_growth_of_the_radius_counters_and_a_restart_counts_from_zero(make_nas):
    nas = make_nas()
    publish("host:0", T0, {nas.name: {"accepts": 5, "accepts_restricted": 1, "rejects_bad_password": 2}})
    take_samples(at(300))
    publish("host:0", T0, {nas.name: {"accepts": 8, "accepts_restricted": 1, "rejects_bad_password": 3}})
    take_samples(at(600))
    publish("host:0", at(700), {nas.name: {"accepts": 2}})  # the process restarted
    take_samples(at(900))

    samples = NasSample.objects.filter(nas=nas).order_by("taken_at").values_list("accepts", "rejects")
    assert list(samples) == [(6, 2), (3, 1), (2, 0)]


def test_no_radius_process_means_authentications_unknown_not_zero(make_nas):
    nas = make_nas()

    take_samples(at(300))

    assert NasSample.objects.values_list("accepts", "rejects").get(nas=nas) == (None, None)


def test_coa_failures_of_the_interval_are_counted_per_nas(make_nas, customer):
    nas = make_nas()
    write_batch([rec(nas, START, sub=customer.pk), rec(nas, START, unique="u2", sub=customer.pk)])
    failed, refused = network.queue_disconnect(customer.pk, reason=CoaReason.SUSPEND)
    CoaRequest.objects.filter(pk=failed.pk).update(status=CoaStatus.FAILED, finished_at=at(100))
    CoaRequest.objects.filter(pk=refused.pk).update(status=CoaStatus.NAKED, finished_at=at(-3600))  # long before

    take_samples(at(300))

    assert NasSample.objects.get(nas=nas).coa_failures == 1


def test_running_twice_at_the_same_moment_writes_one_sample(make_nas):
    nas = make_nas()

    take_samples(at(300))
    take_samples(at(300))

    assert NasSample.objects.filter(nas=nas).count() == 1


def test_samples_past_the_retention_are_pruned(make_nas, settings):
    settings.ABONENT_NETWORK_SAMPLE_DAYS = 35
    nas = make_nas()
    NasSample.objects.create(nas=nas, taken_at=at(0) - dt.timedelta(days=36))
    kept = NasSample.objects.create(nas=nas, taken_at=at(0) - dt.timedelta(days=34))

    take_samples(at(0))

    assert set(NasSample.objects.values_list("pk", flat=True)) == {kept.pk, NasSample.objects.get(taken_at=at(0)).pk}
    assert prune_samples(at(0)) == 0


# --- silent NAS -----------------------------------------------------------------------------------------------


def silent(**kwargs) -> bool:
    values = {
        "is_active": True,
        "interim_interval": 300,
        "open_sessions": 3,
        "last_accounting_at": T0,
        "stranded_at": None,
        "now": T0 + dt.timedelta(minutes=16),
        "minutes": 15,
    }
    return is_silent(**{**values, **kwargs})


def test_a_nas_with_sessions_and_no_accounting_past_the_setting_is_silent():
    assert silent()
    assert not silent(now=T0 + dt.timedelta(minutes=15))  # not past it yet
    assert not silent(is_active=False)  # switched off on purpose
    assert not silent(last_accounting_at=None)  # never reported: nothing to miss


def test_a_nas_that_closed_its_own_sessions_is_quiet_not_silent():
    assert not silent(open_sessions=0)
    # ...but one whose sessions the sweeper had to close after its last accounting is.
    assert silent(open_sessions=0, stranded_at=T0 + dt.timedelta(minutes=10))
    assert not silent(open_sessions=0, stranded_at=T0 - dt.timedelta(minutes=10))  # stranded before, reported since


def test_the_silence_allows_two_interim_intervals_of_the_nas():
    assert silent_after(300, 15) == dt.timedelta(minutes=15)
    assert silent_after(3600, 15) == dt.timedelta(hours=2)
    assert not silent(interim_interval=3600, now=T0 + dt.timedelta(minutes=90))
    assert silent(interim_interval=3600, now=T0 + dt.timedelta(minutes=121))


def test_a_nas_going_quiet_is_flagged_after_the_sweeper_strands_its_sessions_and_cleared_when_it_reports(
    make_nas, customer, settings
):
    settings.ABONENT_NETWORK_SILENT_MINUTES = 15
    nas = make_nas(interim_interval=60)
    write_batch([rec(nas, START, sub=customer.pk), rec(nas, INTERIM, t=60, i=10, o=10, sub=customer.pk)])
    take_samples(at(120))
    # The NAS goes quiet: three intervals later the sweeper closes the session, before monitoring would notice.
    with clock.travel_to(at(600)):
        assert sweep_stale_sessions() == 1
    take_samples(at(900))
    health = NasHealth.objects.select_related("nas").get(nas=nas)
    assert (health.open_sessions, health.last_accounting_at, health.stranded_at) == (0, at(60), at(600))

    def flagged(moment):
        health.refresh_from_db()
        return is_silent(
            is_active=True,
            interim_interval=60,
            open_sessions=health.open_sessions,
            last_accounting_at=health.last_accounting_at,
            stranded_at=health.stranded_at,
            now=moment,
        )

    assert [flagged(at(60 + 15 * 60)), flagged(at(60 + 15 * 60 + 1))] == [False, True]

    # It reports again (a new session, sampled): no longer silent; silent again if it stops once more.
    write_batch([rec(nas, START, t=2000, unique="u2", sub=customer.pk)])
    take_samples(at(2100))
    assert [flagged(at(2100)), flagged(at(2000 + 15 * 60 + 1))] == [False, True]
    assert health.last_accounting_at == at(2000)


def test_a_nas_that_stops_its_sessions_itself_is_not_stranded(make_nas, customer):
    nas = make_nas(interim_interval=60)
    write_batch([rec(nas, START, sub=customer.pk), rec(nas, STOP, t=120, i=5, o=5, sub=customer.pk)])

    with clock.travel_to(at(3600)):
        sweep_stale_sessions()
    take_samples(at(3600))

    health = NasHealth.objects.get(nas=nas)
    assert health.stranded_at is None and health.open_sessions == 0


def test_the_sweeper_does_not_strand_a_nas_still_reporting_other_sessions(make_nas, customer):
    nas = make_nas(interim_interval=60)
    write_batch([rec(nas, START, unique="lost"), rec(nas, START, t=500, unique="alive")])

    with clock.travel_to(at(560)):
        assert sweep_stale_sessions() == 1  # the one whose Stop was lost

    assert not NasHealth.objects.filter(nas=nas, stranded_at__isnull=False).exists()


# --- pools ----------------------------------------------------------------------------------------------------


def test_pool_sizes_leave_out_network_and_broadcast_of_ipv4():
    assert [pool_size(n) for n in ("100.64.0.0/24", "10.0.0.0/30", "10.0.0.0/31", "10.0.0.1/32", "fd00::/120")] == [
        254,
        2,
        2,
        1,
        256,
    ]
    assert pool_size("not a network") == 0


def test_pool_thresholds_come_from_the_settings(settings):
    settings.ABONENT_NETWORK_POOL_WARNING_PERCENT = 80
    settings.ABONENT_NETWORK_POOL_DANGER_PERCENT = 95

    assert [pool_level(p) for p in (0, 79.9, 80, 94.9, 95, 100)] == [
        PoolLevel.OK,
        PoolLevel.OK,
        PoolLevel.WARNING,
        PoolLevel.WARNING,
        PoolLevel.DANGER,
        PoolLevel.DANGER,
    ]
    fill = pool_fill(203, 254)
    assert (fill.percent, fill.level, fill.free) == (79.9, PoolLevel.OK, 51)
    assert pool_fill(204, 254).level == PoolLevel.WARNING
    assert pool_fill(242, 254).level == PoolLevel.DANGER
    assert pool_fill(1, 0).level == PoolLevel.DANGER


def test_the_sampler_counts_distinct_addresses_online_in_each_pool_nested_ones_too(make_nas):
    nas = make_nas()
    outer = IpPool.objects.create(name="outer", network="100.64.0.0/24")
    inner = IpPool.objects.create(name="inner", network="100.64.0.128/25")
    other = IpPool.objects.create(name="other", network="10.1.0.0/16")
    empty = IpPool.objects.create(name="v6", network="fd00::/64")
    records = [
        rec(nas, START, unique="a", ip="100.64.0.5"),
        rec(nas, START, unique="b", ip="100.64.0.200"),
        rec(nas, START, unique="c", ip="100.64.0.200"),  # the same address twice counts once
        rec(nas, START, unique="d", ip="10.1.2.3"),
        rec(nas, START, unique="e", ip="192.0.2.1"),  # in no pool
        rec(nas, START, unique="f", ip="100.64.0.6"),
        rec(nas, STOP, t=10, unique="f", ip="100.64.0.6"),  # closed: not in use
    ]
    write_batch(records)

    take_samples(at(300))

    used = dict(PoolUsage.objects.values_list("pool_id", "used"))
    assert used == {outer.pk: 2, inner.pk: 1, other.pk: 1, empty.pk: 0}
    assert Session.objects.filter(status="open").count() == 5


# --- /metrics -------------------------------------------------------------------------------------------------


def test_metrics_export_silent_nas_and_pool_use(client, make_nas):
    quiet = make_nas(name="quiet", ip_address="10.0.0.1")
    make_nas(name="fine", ip_address="10.0.0.2")
    now = clock.now()
    NasHealth.objects.create(nas=quiet, sampled_at=now, open_sessions=4, last_accounting_at=now - dt.timedelta(hours=1))
    pool = IpPool.objects.create(name="main", network="100.64.0.0/29")  # 6 addresses
    PoolUsage.objects.create(pool=pool, sampled_at=now, used=3)

    lines = client.get("/metrics").content.decode().splitlines()

    assert 'abonent_network_nas_silent{nas="quiet"} 1.0' in lines
    assert 'abonent_network_nas_silent{nas="fine"} 0.0' in lines
    assert any(line.startswith('abonent_network_nas_last_accounting_timestamp_seconds{nas="quiet"} ') for line in lines)
    assert 'abonent_network_ip_pool_addresses_used{pool="main"} 3.0' in lines
    assert 'abonent_network_ip_pool_addresses{pool="main"} 6.0' in lines
    assert 'abonent_network_ip_pool_usage_ratio{pool="main"} 0.5' in lines
