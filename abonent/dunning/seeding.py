"""The demo's and the benchmarks' access states: one sweep after the subscriptions and payments are in, so the
dunning queue, the badges and RADIUS's redirect start from where the money stands; in the demo, one debtor is
exempt ("school") so the exemptions page has something to show."""

from __future__ import annotations

import datetime as dt

from abonent.core import clock
from abonent.core.seeding import SeedContext, seed_step


@seed_step("dunning", order=50)
def seed_dunning(ctx: SeedContext) -> None:
    from .evaluation import sweep
    from .models import AccessState, AccessStateKind, Exemption

    counts = sweep()
    print(f"  access states: {counts['moved']} changed of {counts['subscribers']}", file=ctx.out)
    if not ctx.demo or Exemption.objects.exists():
        return
    from abonent.staff.models import StaffUser

    from .actions import do_create_exemption

    admin = StaffUser.objects.filter(role="admin", is_active=True).order_by("pk").first()
    debtor = (
        AccessState.objects.filter(state__in=[AccessStateKind.RESTRICTED, AccessStateKind.SUSPENDED])
        .select_related("subscriber")
        .order_by("subscriber_id")
        .first()
    )
    if admin is None or debtor is None:
        return
    do_create_exemption(
        subscriber=debtor.subscriber,
        reason="Школа № 5: не отключать, счёт оплачивается по договору",
        expires_on=clock.today() + dt.timedelta(days=365),
        acting_user=admin,
    )
