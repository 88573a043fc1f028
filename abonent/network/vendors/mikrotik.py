"""MikroTik RouterOS: ``Mikrotik-Rate-Limit`` and ``Mikrotik-Address-List``.

Rate-Limit is in the router's view, ``rx/tx``: rx is what the router receives from the client (upload), tx
what it sends (download). With burst: ``rx/tx rx-burst/tx-burst rx-threshold/tx-threshold rx-time/tx-time``.
Values carry ``k`` (1,000 bit/s), so plan speeds in kbit/s are rendered exactly, never rounded to ``M``.
"""

from __future__ import annotations

from .base import Attributes, DebtorSettings, RadiusClientConfig, Speed, VendorProfile

# Burst is allowed while the average over the burst time stays below this share of the plan speed.
BURST_THRESHOLD_SHARE = 3 / 4


def _quoted(value: str) -> str:
    """A RouterOS value: bare when it is letters, digits and ``-_.``, else in double quotes with ``\\``, ``"``
    and ``$`` escaped (``$`` starts a variable inside quotes)."""
    if value and all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


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

    def radius_config(self, config: RadiusClientConfig) -> list[str]:
        """PPP through RADIUS with accounting and interim updates, and CoA/Disconnect accepted on the CoA port.
        ``require-message-auth`` (RouterOS 7.15+, BlastRADIUS): Abonent signs every answer."""
        radius = (
            f"/radius add service=ppp address={config.server} secret={_quoted(config.secret)}"
            f" authentication-port={config.auth_port} accounting-port={config.acct_port}"
        )
        if config.message_authenticator:
            radius += " require-message-auth=yes-for-request-resp"
        return [
            radius,
            f"/ppp aaa set use-radius=yes accounting=yes interim-update={config.interim}",
            f"/radius incoming set accept=yes port={config.coa_port}",
        ]

    # access_change: the generic disconnect. Whether RouterOS applies a Mikrotik-Address-List sent by CoA
    # depends on its version (not verified), and taking an address off the list by CoA is not possible; the
    # PPPoE client redials within seconds into the new state.

    def debtor(self, debtor: DebtorSettings) -> Attributes:
        attrs: Attributes = []
        if debtor.address_list:
            attrs.append(("Mikrotik-Address-List", debtor.address_list))
        return attrs + super().debtor(debtor)
