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

from .base import Attributes, DebtorSettings, Speed, VendorProfile


class AccelPppProfile(VendorProfile):
    name = "accel_ppp"

    def speed(self, speed: Speed) -> Attributes:
        return [("Filter-Id", f"{speed.down_kbps}/{speed.up_kbps}")]

    def debtor(self, debtor: DebtorSettings) -> Attributes:
        return [("L4-Redirect", 1), *super().debtor(debtor)]

    def access_change(self, session, *, restricted, speed, debtor):
        """IPoE: accel-ppp re-reads L4-Redirect (and the shaper attribute) from a CoA-Request, no reconnect.
        PPPoE, hotspot, or a session bound to no login: a Disconnect (see the module's docstring)."""
        if session.ipoe is not True:
            return "disconnect", self.disconnect(session)
        attrs = [*self.identify(session), ("L4-Redirect", 1 if restricted else 0)]
        if speed is not None:
            attrs += self.speed(speed)
        return "coa", attrs
