"""The demo's dashboard: its first snapshot, taken once the other steps have seeded their data, so that the home page
shows the totals before the worker's first run (which then takes one every five minutes)."""

from __future__ import annotations

from abonent.core.seeding import SeedContext, seed_step


@seed_step("dashboard", order=90)
def seed_dashboard(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    from .snapshot import do_take_snapshot

    snapshot = do_take_snapshot()
    ctx.out.write(f"dashboard: snapshot in {snapshot.duration_ms} ms\n")
