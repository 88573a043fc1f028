"""Cisco ISG (IOS / IOS XE): per-session QoS policies named by speed, the debtor redirect as an ISG service.

The policy maps ``ABONENT-DOWN-<kbit/s>K`` and ``ABONENT-UP-<kbit/s>K`` and the service ``DEBTORS`` (an
L4-redirect to the payment page) are configured on the router (docs/radius.md has the template). Each string
below is the form Cisco's documentation gives; docs/radius.md ("Cisco ISG") cites the page for each.

- Speed: ``Cisco-AVPair = "ip:sub-qos-policy-in=<policy>"`` / ``"ip:sub-qos-policy-out=<policy>"``, in the
  Access-Accept and as a per-user CoA push. (``subscriber:sub-qos-policy-*`` is not in any ISG or IOS XE
  document; the ``ip:`` form is.)
- Redirect on a live session: a CoA with ``Cisco-AVPair = "subscriber:command=activate-service"`` (or
  ``deactivate-service``) and ``Cisco-AVPair = "subscriber:service-name=DEBTORS"``. Cisco's examples of these
  requests carry the command, the service name and the session's identity only, so the command travels alone,
  without the QoS policy: the speed and the redirect are separate things on ISG, changed by separate requests.
- Redirect at login: ``Cisco-Account-Info = "ADEBTORS"`` (VSA 250, which ISG reads in the Access-Accept to
  activate a service). The old restore, ``Cisco-Account-Info = "NDEBTORS"`` by CoA, is not an ISG command (the
  ``N`` prefix is SSG's accounting form), so a paying subscriber stayed on the payment page.
"""

from __future__ import annotations

import ipaddress

from .base import Attributes, DebtorSettings, RadiusClientConfig, Speed, VendorProfile

DEBTOR_SERVICE = "DEBTORS"


def qos_policy_names(speed: Speed) -> tuple[str, str]:
    """(input, output) policy-map names: input is what the router receives from the subscriber (upload)."""
    return f"ABONENT-UP-{speed.up_kbps}K", f"ABONENT-DOWN-{speed.down_kbps}K"


def _is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


class CiscoProfile(VendorProfile):
    name = "cisco"
    # The QoS policy and the redirect service are independent on ISG: a speed change is the QoS push alone,
    # for a session in the redirect too (it stays there).
    speed_change_carries_redirect = False

    def speed(self, speed: Speed) -> Attributes:
        policy_in, policy_out = qos_policy_names(speed)
        return [
            ("Cisco-AVPair", f"ip:sub-qos-policy-in={policy_in}"),
            ("Cisco-AVPair", f"ip:sub-qos-policy-out={policy_out}"),
        ]

    def debtor(self, debtor: DebtorSettings) -> Attributes:
        return [("Cisco-Account-Info", f"A{DEBTOR_SERVICE}"), *super().debtor(debtor)]

    def radius_config(self, config: RadiusClientConfig) -> list[str]:
        """The AAA part of docs/radius.md's template; the policy maps and the DEBTORS service are the router's.
        ``address ipv6`` for an IPv6 server (IOS refuses an IPv6 address after ``address ipv4``)."""
        family = "ipv6" if _is_ipv6(config.server) else "ipv4"
        return [
            "aaa new-model",
            "radius server ABONENT",
            f" address {family} {config.server} auth-port {config.auth_port} acct-port {config.acct_port}",
            f" key {config.secret}",
            "aaa group server radius ABONENT-GROUP",
            " server name ABONENT",
            "aaa authentication ppp default group ABONENT-GROUP",
            "aaa authorization network default group ABONENT-GROUP",
            "aaa accounting network default start-stop group ABONENT-GROUP",
            "aaa server radius dynamic-author",
            f" client {config.server} server-key {config.secret}",
            f" port {config.coa_port}",
        ]

    def access_change(self, session, *, restricted, speed, debtor):
        """ISG's service commands by CoA: activate the redirect service, or deactivate it."""
        command = "activate-service" if restricted else "deactivate-service"
        return "coa", [
            *self.identify(session),
            ("Cisco-AVPair", f"subscriber:command={command}"),
            ("Cisco-AVPair", f"subscriber:service-name={DEBTOR_SERVICE}"),
        ]
