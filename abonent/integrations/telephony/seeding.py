"""Demo data of telephony: the demo operator answers extension 101 (docs/telephony.md, "Trying it")."""

from __future__ import annotations

from abonent.core import clock
from abonent.core.seeding import SeedContext, seed_step
from abonent.staff.models import StaffUser

from .models import Extension

DEMO_EXTENSION = "101"


@seed_step("telephony", order=90)
def seed_extensions(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    operator = StaffUser.objects.filter(username="operator").first()
    if operator is not None and not Extension.objects.filter(number=DEMO_EXTENSION).exists():
        Extension.objects.get_or_create(user=operator, defaults={"number": DEMO_EXTENSION, "created_at": clock.now()})
