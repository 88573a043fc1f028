"""What monitoring keeps: samples of each NAS over time, the accounting state of each NAS, the use of each pool.
Registered with the network app (``network.models`` imports them)."""

from __future__ import annotations

import ipaddress

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class NasSample(models.Model):
    """One NAS at one run of the monitoring sampler: its sessions online at that moment, and what happened since
    the run before (``interval_seconds`` ago): bytes through it, authentications, CoA requests that failed.

    Every row of a run carries the run's ``taken_at``, so the network's total over time is a sum by ``taken_at``.
    Kept ``ABONENT_NETWORK_SAMPLE_DAYS`` days (pruned by the sampler's task)."""

    nas = models.ForeignKey("network.Nas", on_delete=models.CASCADE, related_name="+", db_index=False)
    taken_at = models.DateTimeField(_("time"))
    interval_seconds = models.PositiveIntegerField(default=0)
    open_sessions = models.PositiveIntegerField(_("sessions online"), default=0)
    # From the interim updates of the sessions online (``sampler``): an estimate, exact when the NAS's interim
    # interval is at least the sampling interval. Subscriber → NAS is input, NAS → subscriber is output.
    input_octets = models.BigIntegerField(_("received from subscribers, bytes"), default=0)
    output_octets = models.BigIntegerField(_("sent to subscribers, bytes"), default=0)
    # From the RADIUS processes' counters; None when no process reported this NAS (FreeRADIUS in front, none running).
    accepts = models.PositiveIntegerField(_("accepts"), null=True, blank=True)
    rejects = models.PositiveIntegerField(_("rejects"), null=True, blank=True)
    coa_failures = models.PositiveIntegerField(_("CoA failures"), default=0)

    class Meta:
        verbose_name = _("NAS sample")
        verbose_name_plural = _("NAS samples")
        constraints = [models.UniqueConstraint(fields=["nas", "taken_at"], name="network_nassample_once")]
        # The network's total over time and the pruning read by time alone; one NAS's chart by (nas, taken_at).
        indexes = [models.Index(fields=["taken_at"], name="network_nassample_time_idx")]

    def __str__(self) -> str:
        return f"{self.nas_id} @ {self.taken_at}"


class NasHealth(models.Model):
    """What monitoring knows of one NAS's accounting now, written by the sampler and the stale-session sweeper.

    ``last_accounting_at`` is the newest update of any of its sessions seen so far (kept when none is open);
    ``stranded_at`` is when the sweeper closed the last of its open sessions for want of updates: the NAS had
    subscribers online and stopped reporting them (``health.is_silent``)."""

    nas = models.OneToOneField("network.Nas", on_delete=models.CASCADE, primary_key=True, related_name="health")
    sampled_at = models.DateTimeField(_("sampled"), null=True, blank=True)
    open_sessions = models.PositiveIntegerField(_("sessions online"), default=0)
    last_accounting_at = models.DateTimeField(_("last accounting"), null=True, blank=True)
    stranded_at = models.DateTimeField(null=True, blank=True)
    # The RADIUS processes' counters of this NAS at the last sample, per process: {node: [started_at, accepts,
    # rejects]}; the next sample's figures are the growth since (a restarted process counts from zero).
    auth_counters = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("NAS health")
        verbose_name_plural = _("NAS health")

    def __str__(self) -> str:
        return f"{self.nas_id}: {self.open_sessions} online, last accounting {self.last_accounting_at}"


class PoolUsage(models.Model):
    """How many addresses of a pool the sessions online held at the sampler's last run (distinct Framed-IP
    addresses inside the pool's network)."""

    pool = models.OneToOneField("network.IpPool", on_delete=models.CASCADE, primary_key=True, related_name="usage")
    sampled_at = models.DateTimeField(_("sampled"))
    used = models.PositiveIntegerField(_("addresses in use"), default=0)

    class Meta:
        verbose_name = _("pool usage")
        verbose_name_plural = _("pool usage")
        constraints = [models.CheckConstraint(condition=Q(used__gte=0), name="network_poolusage_used_gte_0")]

    def __str__(self) -> str:
        return f"{self.pool_id}: {self.used}"


def pool_size(network: str) -> int:
    """Addresses a pool of ``network`` (CIDR) can hand out: without the network and broadcast addresses of an IPv4
    net of /30 or wider; 0 for text that is not a network."""
    try:
        net = ipaddress.ip_network(network.strip(), strict=False)
    except ValueError:
        return 0
    if net.version == 4 and net.prefixlen <= 30:
        return net.num_addresses - 2
    return net.num_addresses
