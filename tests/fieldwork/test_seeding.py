"""The demo's field work: the engineer's day has a repair with an ONT issued and a prospect's connection."""

from abonent.core.seeding import SeedContext
from abonent.fieldwork.models import DeviceState, Job, StockDevice
from abonent.fieldwork.seeding import seed_fieldwork
from abonent.staff.permissions import Role

from .conftest import TODAY


def test_the_demo_engineer_has_a_day_to_work(make_staff, make_subscriber, admin):
    engineer = make_staff(Role.ENGINEER, username="engineer")
    make_subscriber(phone="+79161234567")
    ctx = SeedContext(subscribers=0, demo=True, facts={"featured_phone": "+79161234567"})

    seed_fieldwork(ctx)
    seed_fieldwork(ctx)  # the demo reuses its data: a second run adds nothing

    jobs = Job.objects.filter(installer=engineer, day=TODAY).order_by("starts_at")
    assert [(j.kind, j.subscriber_id is None) for j in jobs] == [("repair", False), ("connection", True)]
    assert StockDevice.objects.count() == 15
    issued = StockDevice.objects.get(state=DeviceState.ISSUED)
    assert (issued.holder, issued.job) == (engineer, jobs[0])
    assert jobs[0].checklist.count() == 3
