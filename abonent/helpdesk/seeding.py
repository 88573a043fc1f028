"""The demo's helpdesk reference data: two queues with their supervisors and members, and Russia's fixed public
holidays for the SLA calendars (docs/helpdesk-sla.md). The demo only: a benchmark needs none of it."""

import datetime as dt

from abonent.core import clock
from abonent.core.seeding import SeedContext, seed_step
from abonent.staff.models import StaffUser

from .models import Holiday, Queue

# (queue, supervisor, members) by the demo staff's logins (staff/seeding.py).
DEMO_QUEUES = [("Линия 1", "operator", ["support", "operator"]), ("Сеть", "admin", ["engineer"])]
# Fixed-date public holidays (Labour Code art. 112); the government's yearly day-off transfers are added by hand.
PUBLIC_HOLIDAYS = [
    *((1, day) for day in range(1, 9)),
    (2, 23),
    (3, 8),
    (5, 1),
    (5, 9),
    (6, 12),
    (11, 4),
]


@seed_step("helpdesk", order=65)
def seed_helpdesk(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    logins = {"operator", "support", "admin", "engineer"}
    staff = {user.username: user for user in StaffUser.objects.filter(username__in=logins)}
    for name, supervisor, members in DEMO_QUEUES:
        queue, created = Queue.objects.get_or_create(name=name, defaults={"supervisor": staff.get(supervisor)})
        if created:
            queue.members.add(*(staff[login] for login in members if login in staff))
    year = clock.today().year
    for y in (year, year + 1):
        for month, day in PUBLIC_HOLIDAYS:
            Holiday.objects.get_or_create(date=dt.date(y, month, day), defaults={"name": "Праздник"})
