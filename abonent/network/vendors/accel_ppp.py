"""accel-ppp: ``Filter-Id "down/up"`` in kbit/s, read by its shaper at login and again on CoA.

No ``K``/``M``/``G`` suffix: accel-ppp multiplies ``G`` by 10,000,000 (a bug), so plain kbit/s is the safe
form. Debtors on IPoE get ``L4-Redirect = 1`` (accel-ppp's ``l4-redirect-ipset``/``-table`` does the rest);
on PPPoE, the debtor pool when the NAS has one.

accel-ppp applies a CoA's ``L4-Redirect`` to IPoE sessions only: ``ev_radius_coa`` in
``accel-pppd/ctrl/ipoe/ipoe.c`` returns unless the session is IPoE, and PPPoE has no redirect of its own. So
a live PPPoE session is moved into or out of the redirect by a Disconnect-Request; the client redials and
gets the debtor pool, or the usual one, at re-authentication.
"""

from __future__ import annotations

from .base import Attributes, DebtorSettings, RadiusClientConfig, Speed, VendorProfile


class AccelPppProfile(VendorProfile):
    name = "accel_ppp"

    def speed(self, speed: Speed) -> Attributes:
        return [("Filter-Id", f"{speed.down_kbps}/{speed.up_kbps}")]

    def debtor(self, debtor: DebtorSettings) -> Attributes:
        return [("L4-Redirect", 1), *super().debtor(debtor)]

    def radius_config(self, config: RadiusClientConfig) -> list[str]:
        """accel-ppp.conf's ``[radius]`` section (and the shaper reading Filter-Id). ``acct-timeout=0``: an
        accounting outage must not end sessions; ``blast-protection=1`` (2025-07 and later) when Abonent requires
        Message-Authenticator of this NAS."""
        lines = [
            "[radius]",
            f"nas-identifier={config.nas_identifier}",
            f"server={config.server},{config.secret},auth-port={config.auth_port},acct-port={config.acct_port},"
            "req-limit=0,fail-timeout=0,max-fail=10",
            f"dae-server=0.0.0.0:{config.coa_port},{config.secret}",
            f"acct-interim-interval={config.interim_seconds}",
            "acct-on=1",
            "acct-timeout=0",
        ]
        if config.message_authenticator:
            lines.append("blast-protection=1")
        return [*lines, "[shaper]", "attr=Filter-Id"]

    def access_change(self, session, *, restricted, speed, debtor):
        """IPoE: accel-ppp re-reads L4-Redirect (and the shaper attribute) from a CoA-Request, no reconnect.
        PPPoE, hotspot, or a session bound to no login: a Disconnect (see the module's docstring)."""
        if session.ipoe is not True:
            return "disconnect", self.disconnect(session)
        attrs = [*self.identify(session), ("L4-Redirect", 1 if restricted else 0)]
        if speed is not None:
            attrs += self.speed(speed)
        return "coa", attrs
