"""MikroTik RouterOS: ``Mikrotik-Rate-Limit`` and ``Mikrotik-Address-List``.

Rate-Limit is in the router's view, ``rx/tx``: rx is what the router receives from the client (upload), tx
what it sends (download). With burst: ``rx/tx rx-burst/tx-burst rx-threshold/tx-threshold rx-time/tx-time``.
Values carry ``k`` (1,000 bit/s), so plan speeds in kbit/s are rendered exactly, never rounded to ``M``.
"""

from __future__ import annotations

from .base import Attributes, DebtorSettings, Speed, VendorProfile

# Burst is allowed while the average over the burst time stays below this share of the plan speed.
BURST_THRESHOLD_SHARE = 3 / 4


class MikrotikProfile(VendorProfile):
    name = "mikrotik"

    @staticmethod
    def rate_limit(speed: Speed) -> str:
        value = f"{speed.up_kbps}k/{speed.down_kbps}k"
        if speed.has_burst:
            up_threshold = int(speed.up_kbps * BURST_THRESHOLD_SHARE)
            down_threshold = int(speed.down_kbps * BURST_THRESHOLD_SHARE)
            value += (
                f" {speed.burst_up_kbps}k/{speed.burst_down_kbps}k"
                f" {up_threshold}k/{down_threshold}k"
                f" {speed.burst_seconds}/{speed.burst_seconds}"
            )
        return value

    def speed(self, speed: Speed) -> Attributes:
        return [("Mikrotik-Rate-Limit", self.rate_limit(speed))]

    # access_change: the generic disconnect. Whether RouterOS applies a Mikrotik-Address-List sent by CoA
    # depends on its version (not verified), and taking an address off the list by CoA is not possible; the
    # PPPoE client redials within seconds into the new state.

    def debtor(self, debtor: DebtorSettings) -> Attributes:
        attrs: Attributes = []
        if debtor.address_list:
            attrs.append(("Mikrotik-Address-List", debtor.address_list))
        return attrs + super().debtor(debtor)
