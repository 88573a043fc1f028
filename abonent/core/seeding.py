"""Demo and benchmark data: apps register seed steps; ``abonent seed`` and ``abonent demo`` run them in order.

A step gets a ``SeedContext`` and must be idempotent per database (the demo seeds once and then
reuses its data), and fast at scale: benchmark seeding writes with bulk SQL, not per-row saves.

The demo (``ctx.demo``) gives staff users and subscribers published passwords: it never runs with
``ABONENT_ENV=production`` (``refuse_demo_in_production``), whatever the entry point.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings


@dataclass
class SeedContext:
    subscribers: int
    demo: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(20261129))
    out: object = sys.stderr
    facts: dict = field(default_factory=dict)  # what steps tell later steps and the demo banner


@dataclass(frozen=True)
class SeedStep:
    name: str
    order: int
    run: Callable[[SeedContext], None]


_steps: dict[str, SeedStep] = {}


def seed_step(name: str, *, order: int):
    def register(fn):
        _steps[name] = SeedStep(name, order, fn)
        return fn

    return register


class DemoInProduction(Exception):
    """The demo was asked for where ``ABONENT_ENV=production``."""


DEMO_IN_PRODUCTION = (
    "abonent demo refuses to run with ABONENT_ENV=production: it sets published passwords for staff users and "
    "for subscribers' portal accounts. Run it on a database of its own, with ABONENT_ENV unset or development."
)


def refuse_demo_in_production() -> None:
    if settings.ENV == "production":
        raise DemoInProduction(DEMO_IN_PRODUCTION)


def run_seed(ctx: SeedContext) -> None:
    if ctx.demo:
        refuse_demo_in_production()
    for step in sorted(_steps.values(), key=lambda s: s.order):
        started = time.monotonic()
        step.run(ctx)
        print(f"seed: {step.name} done in {time.monotonic() - started:.1f}s", file=ctx.out)


class Progress:
    """A one-line progress bar on stderr (no dependency, quiet when not a terminal)."""

    def __init__(self, label: str, total: int, out=sys.stderr):
        self.label, self.total, self.out = label, total, out
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self.tty = hasattr(out, "isatty") and out.isatty()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        if not self.tty:
            return
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        rate = self.done / max(now - self.started, 1e-6)
        self.out.write(
            f"\r{self.label:<14} [{'#' * filled}{'.' * (width - filled)}] {self.done:>9,}/{self.total:,} {rate:,.0f}/s"
        )
        self.out.flush()

    def close(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.tty:
            self.out.write("\n")
        self.out.write(f"{self.label}: {self.done:,} in {elapsed:.1f}s\n")
        self.out.flush()
