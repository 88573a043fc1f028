"""Counters of the RADIUS server, per NAS and in total, published by the maintenance thread."""

from __future__ import annotations

import collections


class Stats:
    """Counters per NAS and in total, read by the monitoring snapshot."""

    def __init__(self) -> None:
        self.counters: collections.Counter[tuple[str, str]] = collections.Counter()
        self.last_packet: dict[str, float] = {}

    def inc(self, nas: str, name: str, n: int = 1) -> None:
        self.counters[(nas, name)] += n

    def total(self, name: str) -> int:
        return sum(v for (_nas, key), v in self.counters.items() if key == name)


# The counter each recorded Acct-Status-Type adds to.
ACCOUNTING_COUNTERS = {
    1: "accounting_start",
    2: "accounting_stop",
    3: "accounting_interim",
    7: "accounting_on",
    8: "accounting_off",
}
