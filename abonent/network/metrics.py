"""The network's Prometheus figures: RADIUS processes, sessions online, the CoA queue, monitoring's silent NAS and
pools' use, read from the database when ``/metrics`` is scraped. Imported once, from ``NetworkConfig.ready()``,
which registers them with core's ``/metrics``."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from abonent.core import clock
from abonent.core.metrics import register_database_collector

from . import selectors
from .models import CoaStatus

logger = logging.getLogger(__name__)

# Per web process (summed over them with PROMETHEUS_MULTIPROC_DIR): the rlm_rest endpoint's counterpart of
# abonent radius's ``accounting_ignored`` event.
REST_ACCOUNTING_IGNORED = Counter(
    "abonent_radius_rest_accounting_ignored_total",
    "Accounting-Requests through FreeRADIUS's rlm_rest with a status not recorded (Tunnel-*, Failed, none), "
    "acknowledged with nothing written",
    ["nas"],
)


class NetworkCollector:
    """RADIUS and session figures read from the database at scrape time: the RADIUS processes publish their
    counters in ``RadiusNode`` rows (they may run on other hosts), so any web process can export them.

    Three small queries: the RADIUS process rows (one per process), the NAS, and the open sessions counted
    per NAS (the partial index of open sessions). A database error exports nothing of this, not a 500.
    """

    def describe(self):
        # Without describe() the registry would call collect() — and query the database — when registering.
        return list(self._families())

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily("abonent_network_sessions_online", "Open sessions by NAS", labels=["nas"]),
            CounterMetricFamily(
                "abonent_radius_events",
                "RADIUS server counters by NAS and event (accepts, rejects_<reason>, dropped_<reason>, "
                "accounting_<type>, ...), summed over the RADIUS processes; reset when a process restarts",
                labels=["nas", "event"],
            ),
            GaugeMetricFamily(
                "abonent_radius_last_packet_timestamp_seconds",
                "When a packet from the NAS was last seen",
                labels=["nas"],
            ),
            GaugeMetricFamily(
                "abonent_radius_accounting_queue", "Accounting records waiting for the database", labels=["node"]
            ),
            GaugeMetricFamily(
                "abonent_radius_spool_backlog",
                "1 when accounting is spooled to disk, waiting for replay",
                labels=["node"],
            ),
            GaugeMetricFamily(
                "abonent_radius_node_updated_timestamp_seconds",
                "When the RADIUS process last published its counters (a stale one has stopped)",
                labels=["node"],
            ),
            GaugeMetricFamily(
                "abonent_radius_policy_age_seconds",
                "How old the policy the RADIUS process answers from is: seconds since it was read from the "
                "database (a restored snapshot counts from when it was read); grows while the process cannot "
                "reach the database. Past ABONENT_RADIUS_SNAPSHOT_MAX_AGE only logins that had a session get in",
                labels=["node"],
            ),
        )

    def collect(self):
        online, events, last_packet, queue, backlog, updated, policy_age = self._families()
        now = clock.now()
        try:
            overview = selectors.nas_overview()
            totals = selectors.radius_totals()
        except DatabaseError:
            logger.warning("metrics: network figures unavailable", exc_info=True)
            return
        for item in overview:
            online.add_metric([item["nas"].name], item["online"])
        for nas, counters in sorted(totals.counters.items()):
            for event, value in sorted(counters.items()):
                events.add_metric([nas, event], value)
        for nas, seen in sorted(totals.last_packet.items()):
            last_packet.add_metric([nas], seen)
        for node in totals.nodes:
            queue.add_metric([node.node], node.accounting_queue)
            backlog.add_metric([node.node], int(node.spool_backlog))
            updated.add_metric([node.node], node.updated_at.timestamp())
            if node.policy_as_of is not None:
                policy_age.add_metric([node.node], max(0.0, (now - node.policy_as_of).total_seconds()))
        yield from (online, events, last_packet, queue, backlog, updated, policy_age)


NETWORK_COLLECTOR = register_database_collector(NetworkCollector())


class CoaCollector:
    """The CoA/Disconnect queue read from the database at scrape time (the worker that sends it may run
    anywhere): a NAS with a wrong CoA secret or port shows as requests retrying, then failed.

    Two small queries (``network.selectors.queue_figures``): the NAS, and the waiting and recently finished requests
    counted per NAS and status. A database error exports nothing of this, not a 500.
    """

    def describe(self):
        return list(self._families())

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily(
                "abonent_coa_requests_pending", "CoA/Disconnect requests waiting to be sent or retried", labels=["nas"]
            ),
            GaugeMetricFamily(
                "abonent_coa_requests_retrying",
                "Waiting CoA/Disconnect requests already tried without success (no answer, a NAK, a bad reply)",
                labels=["nas"],
            ),
            GaugeMetricFamily(
                "abonent_coa_requests_finished",
                "CoA/Disconnect requests finished in the last hour by status (acked, naked, failed, superseded)",
                labels=["nas", "status"],
            ),
        )

    def collect(self):
        pending, retrying, finished = self._families()
        try:
            figures = selectors.queue_figures()
        except DatabaseError:
            logger.warning("metrics: CoA figures unavailable", exc_info=True)
            return
        outcomes = [status for status in CoaStatus.values if status != CoaStatus.PENDING]
        for nas in figures.nas_names:
            pending.add_metric([nas], figures.pending.get(nas, 0))
            retrying.add_metric([nas], figures.retrying.get(nas, 0))
            for status in outcomes:
                finished.add_metric([nas, status], figures.finished.get(nas, {}).get(status, 0))
        yield from (pending, retrying, finished)


COA_COLLECTOR = register_database_collector(CoaCollector())


class MonitoringCollector:
    """Monitoring's verdicts at scrape time: silent NAS (no accounting while subscribers were online on it,
    ``monitoring.health.is_silent``), each NAS's newest accounting, and the address pools' use at the sampler's last
    run. Two small queries (the NAS with their health, the pools with their use); alert on
    ``abonent_network_nas_silent == 1`` and on ``abonent_network_ip_pool_usage_ratio`` near 1."""

    def describe(self):
        return list(self._families())

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily(
                "abonent_network_nas_silent",
                "1 when the NAS sent no accounting for ABONENT_NETWORK_SILENT_MINUTES (at least two interim intervals) "
                "while subscribers were online on it",
                labels=["nas"],
            ),
            GaugeMetricFamily(
                "abonent_network_nas_last_accounting_timestamp_seconds",
                "The newest accounting update of the NAS's sessions seen by monitoring's sampler",
                labels=["nas"],
            ),
            GaugeMetricFamily(
                "abonent_network_ip_pool_addresses_used",
                "Distinct addresses of the sessions online inside the pool's network, at the sampler's last run",
                labels=["pool"],
            ),
            GaugeMetricFamily("abonent_network_ip_pool_addresses", "Addresses the pool can hand out", labels=["pool"]),
            GaugeMetricFamily(
                "abonent_network_ip_pool_usage_ratio",
                "Addresses in use over those the pool has (0 to 1)",
                labels=["pool"],
            ),
        )

    def collect(self):
        from .monitoring.selectors import nas_states, pool_states

        silent, last_accounting, used, size, ratio = self._families()
        try:
            states = nas_states(clock.now())
            pools = pool_states()
        except DatabaseError:
            logger.warning("metrics: monitoring figures unavailable", exc_info=True)
            return
        for state in states:
            silent.add_metric([state.nas.name], int(state.silent))
            if state.last_accounting_at is not None:
                last_accounting.add_metric([state.nas.name], state.last_accounting_at.timestamp())
        for state in pools:
            used.add_metric([state.pool.name], state.fill.used)
            size.add_metric([state.pool.name], state.fill.size)
            ratio.add_metric([state.pool.name], round(state.fill.percent / 100, 4))
        yield from (silent, last_accounting, used, size, ratio)


MONITORING_COLLECTOR = register_database_collector(MonitoringCollector())
