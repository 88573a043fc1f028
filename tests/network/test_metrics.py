"""``/metrics`` exports the RADIUS processes' counters and the sessions online, read at scrape time."""

import pytest

from abonent.core import clock
from abonent.network.accounting import START, AcctRecord, write_batch
from abonent.network.models import RadiusNode

pytestmark = pytest.mark.django_db


def publish(node: str, counters: dict, *, queue: int = 0, backlog: bool = False, last_packet: dict | None = None):
    """What a RADIUS process's maintenance thread writes every few seconds (runner.Maintenance._publish)."""
    now = clock.now()
    RadiusNode.objects.update_or_create(
        node=node,
        defaults={
            "started_at": now,
            "updated_at": now,
            "counters": counters,
            "last_packet": last_packet or {},
            "accounting_queue": queue,
            "spool_backlog": backlog,
        },
    )


def lines(client) -> list[str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode().splitlines()


def test_metrics_export_radius_counters_summed_over_processes(client, customer, make_nas):
    nas = make_nas()
    idle = make_nas(name="idle", ip_address="10.0.0.9")
    write_batch(
        [
            AcctRecord(
                status=START,
                nas_id=nas.pk,
                event_time=clock.now(),
                unique_id="u-1",
                acct_session_id="s-1",
                username="ivanov",
                subscriber_id=customer.pk,
            )
        ]
    )
    publish(
        "host:1812:0",
        {nas.name: {"accepts": 5, "rejects_bad_password": 2}},
        queue=3,
        last_packet={nas.name: 1_700_000_000.5},
    )
    publish("host:1812:1", {nas.name: {"accepts": 7}, "all": {"accounting_spooled": 4}}, backlog=True)

    metrics = lines(client)

    assert f'abonent_network_sessions_online{{nas="{nas.name}"}} 1.0' in metrics
    assert f'abonent_network_sessions_online{{nas="{idle.name}"}} 0.0' in metrics
    assert f'abonent_radius_events_total{{event="accepts",nas="{nas.name}"}} 12.0' in metrics
    assert f'abonent_radius_events_total{{event="rejects_bad_password",nas="{nas.name}"}} 2.0' in metrics
    assert 'abonent_radius_events_total{event="accounting_spooled",nas="all"} 4.0' in metrics
    assert f'abonent_radius_last_packet_timestamp_seconds{{nas="{nas.name}"}} 1.7000000005e+09' in metrics
    assert 'abonent_radius_accounting_queue{node="host:1812:0"} 3.0' in metrics
    assert 'abonent_radius_accounting_queue{node="host:1812:1"} 0.0' in metrics
    assert 'abonent_radius_spool_backlog{node="host:1812:1"} 1.0' in metrics
    assert any(
        line.startswith('abonent_radius_node_updated_timestamp_seconds{node="host:1812:0"} ') for line in metrics
    )


def test_metrics_without_radius_processes_still_answer(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        metrics = lines(client)

    assert "# TYPE abonent_radius_events_total counter" in metrics
    assert not any(line.startswith("abonent_radius_events_total{") for line in metrics)
