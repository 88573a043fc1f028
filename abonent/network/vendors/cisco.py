"""Cisco ISG / IOS-XE: QoS policies named by speed in ``Cisco-AVPair``, the debtor redirect as a service.

The policy maps ``ABONENT-DOWN-<kbit/s>K`` and ``ABONENT-UP-<kbit/s>K`` and the service ``DEBTORS`` (an
L4-redirect to the payment page) are configured on the router (docs/radius.md has the template).
"""

from __future__ import annotations

from .base import Attributes, DebtorSettings, Speed, VendorProfile

DEBTOR_SERVICE = "DEBTORS"


class CiscoProfile(VendorProfile):
    name = "cisco"

    def speed(self, speed: Speed) -> Attributes:
        return [
            ("Cisco-AVPair", f"subscriber:sub-qos-policy-out=ABONENT-DOWN-{speed.down_kbps}K"),
            ("Cisco-AVPair", f"subscriber:sub-qos-policy-in=ABONENT-UP-{speed.up_kbps}K"),
        ]

    def debtor(self, debtor: DebtorSettings) -> Attributes:
        return [("Cisco-Account-Info", f"A{DEBTOR_SERVICE}"), *super().debtor(debtor)]

    def access_change(self, session, *, restricted, speed, debtor):
        """ISG activates ("A") or deactivates ("N") the redirect service by CoA."""
        action = "A" if restricted else "N"
        return "coa", [*self.identify(session), ("Cisco-Account-Info", f"{action}{DEBTOR_SERVICE}")]
