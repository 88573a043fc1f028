"""Apps export their own figures from ``/metrics`` through ``core.metrics.register_database_collector``: core
names none of them (the network app registers its RADIUS and CoA collectors from its ``ready()``)."""

import pytest
from prometheus_client.core import GaugeMetricFamily

from abonent.core import metrics

pytestmark = pytest.mark.django_db


class ParcelsCollector:
    """A stand-in for an app's figures: one gauge, counting how often it was collected."""

    def __init__(self):
        self.collected = 0

    def describe(self):
        return [GaugeMetricFamily("abonent_test_parcels", "Parcels waiting")]

    def collect(self):
        self.collected += 1
        gauge = GaugeMetricFamily("abonent_test_parcels", "Parcels waiting", labels=["depot"])
        gauge.add_metric(["north"], 3)
        yield gauge


@pytest.fixture
def parcels():
    collector = metrics.register_database_collector(ParcelsCollector())
    yield collector
    metrics.unregister_database_collector(collector)


def scrape(client) -> list[str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode().splitlines()


def test_a_registered_collector_is_exported(client, parcels):
    lines = scrape(client)
    assert lines.count('abonent_test_parcels{depot="north"} 3.0') == 1
    assert parcels.collected == 1


def test_with_several_processes_a_registered_collector_is_exported_once(client, parcels, tmp_path, monkeypatch):
    # given several web processes sharing a multiprocess directory (empty: no process has counted yet)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    lines = scrape(client)

    assert lines.count('abonent_test_parcels{depot="north"} 3.0') == 1
    assert "# TYPE abonent_coa_requests_pending gauge" in lines  # the network app's, registered the same way


def test_an_unregistered_collector_is_no_longer_exported(client):
    collector = metrics.register_database_collector(ParcelsCollector())
    metrics.unregister_database_collector(collector)

    assert not any(line.startswith("abonent_test_parcels") for line in scrape(client))
    assert collector.collected == 0
