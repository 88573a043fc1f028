"""accel-ppp: ``Filter-Id "down/up"`` in kbit/s, read by its shaper at login and again on CoA.

No ``K``/``M``/``G`` suffix: accel-ppp multiplies ``G`` by 10,000,000 (a bug), so plain kbit/s is the safe
form. Debtors on IPoE get ``L4-Redirect = 1`` (accel-ppp's ``l4-redirect-ipset``/``-table`` does the rest);
on PPPoE, the debtor pool when the NAS has one.
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
        """accel-ppp re-reads L4-Redirect (and the shaper attribute) from a CoA-Request: no reconnect."""
        attrs = [*self.identify(session), ("L4-Redirect", 1 if restricted else 0)]
        if speed is not None:
            attrs += self.speed(speed)
        return "coa", attrs
