"""``/metrics`` exports the RADIUS processes' counters, the sessions online and the CoA queue, read at scrape
time."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import START, AcctRecord, write_batch
from abonent.network.coa import mark_superseded
from abonent.network.models import CoaError, CoaReason, CoaRequest, CoaStatus, RadiusNode, Session

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
    # three for the RADIUS figures, two for the CoA queue, two for monitoring (NAS health, pools)
    with django_assert_max_num_queries(7):
        metrics = lines(client)

    assert "# TYPE abonent_radius_events_total counter" in metrics
    assert not any(line.startswith("abonent_radius_events_total{") for line in metrics)


def test_metrics_export_the_coa_queue_per_nas(client, customer, make_nas):
    # given a NAS answering nothing (a wrong CoA port or secret) and one that works
    broken = make_nas(name="broken", ip_address="10.0.0.8")
    fine = make_nas(name="fine", ip_address="10.0.0.9")
    now = clock.now()
    for n, nas in enumerate([broken, broken, broken, fine, fine]):
        Session.objects.create(
            nas=nas, unique_id=f"u-{n}", acct_session_id=f"s-{n}", subscriber=customer, username="ivanov",
            started_at=now - dt.timedelta(seconds=n), updated_at=now,
        )  # fmt: skip
    network.queue_disconnect(customer.pk, reason=CoaReason.SUSPEND)  # newest session first
    waiting, tried, superseded, acked, failed = CoaRequest.objects.order_by("pk")
    CoaRequest.objects.filter(pk=tried.pk).update(attempts=1, last_error=CoaError.NO_ANSWER, error_detail="2")
    mark_superseded([superseded], now=now)
    CoaRequest.objects.filter(pk=acked.pk).update(status=CoaStatus.ACKED, finished_at=now)
    CoaRequest.objects.filter(pk=failed.pk).update(status=CoaStatus.FAILED, finished_at=now - dt.timedelta(hours=2))

    metrics = lines(client)

    assert 'abonent_coa_requests_pending{nas="broken"} 2.0' in metrics
    assert 'abonent_coa_requests_retrying{nas="broken"} 1.0' in metrics
    assert 'abonent_coa_requests_finished{nas="broken",status="superseded"} 1.0' in metrics
    assert 'abonent_coa_requests_finished{nas="broken",status="acked"} 0.0' in metrics
    assert 'abonent_coa_requests_pending{nas="fine"} 0.0' in metrics
    assert 'abonent_coa_requests_retrying{nas="fine"} 0.0' in metrics
    assert 'abonent_coa_requests_finished{nas="fine",status="acked"} 1.0' in metrics
    # finished more than an hour ago: out of the window
    assert 'abonent_coa_requests_finished{nas="fine",status="failed"} 0.0' in metrics
    assert waiting.status == CoaStatus.PENDING
