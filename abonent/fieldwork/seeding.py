"""Demo field work: two device models with a few boxes received, checklists, and the demo engineer's day (a repair
for the featured subscriber, a prospect's connection) with an ONT issued for it. Made through the actions, so the
demo's warehouse and audit log look as they would in use. Demo only: benchmarks need none of it."""

from __future__ import annotations

import datetime as dt

from abonent.core import clock
from abonent.core.seeding import SeedContext, seed_step
from abonent.helpdesk import actions as helpdesk
from abonent.helpdesk.models import TicketSource
from abonent.staff.models import StaffUser
from abonent.subscribers.models import ContactPoint

from . import actions
from .models import DeviceModel, StockDevice

CHECKLISTS = {
    "connection": "Проложить кабель\nУстановить и настроить ONT\nНастроить Wi-Fi роутер\nЗамерить скорость",
    "repair": "Проверить кабель и коннекторы\nПерезагрузить ONT\nЗамерить скорость",
}


@seed_step("field work", order=65)
def seed_fieldwork(ctx: SeedContext) -> None:
    if not ctx.demo or DeviceModel.objects.exists():
        return
    admin = StaffUser.objects.filter(username="admin").first()
    engineer = StaffUser.objects.filter(username="engineer").first()
    if admin is None or engineer is None:
        return
    ont = actions.do_create_device_model(vendor="ZTE", name="F660", kind="ont", acting_user=admin)
    router = actions.do_create_device_model(vendor="TP-Link", name="Archer C6", kind="router", acting_user=admin)
    actions.do_receive_devices(ont, text="\n".join(f"ZTEGC{n:07d}" for n in range(1, 11)), acting_user=admin)
    actions.do_receive_devices(router, text="\n".join(f"TPL22{n:07d}" for n in range(1, 6)), acting_user=admin)
    for kind, text in CHECKLISTS.items():
        actions.do_set_checklist_template(kind, text=text, acting_user=admin)

    today = clock.today()
    phone = ctx.facts.get("featured_phone") or "+79161234567"
    contact = ContactPoint.objects.filter(value=phone).select_related("subscriber").first()
    if contact is not None:
        ticket = helpdesk.do_open_ticket(
            contact.subscriber,
            helpdesk.TicketData(category="no_connection", subject="Нет интернета", text="С утра горит красный LOS."),
            # Taken by phone in the console: a portal request would count against the subscriber's daily limit,
            # which the portal's own browser test spends.
            source=TicketSource.CONSOLE,
            acting_user=admin,
        )
        repair = actions.do_create_job(
            installer=engineer,
            slot=actions.Slot(day=today, starts_at=dt.time(10, 0), ends_at=dt.time(11, 0)),
            ticket=ticket,
            acting_user=admin,
        )
        device = StockDevice.objects.filter(device_model=ont).order_by("serial_number").first()
        actions.do_issue_device(device, installer=engineer, job=repair, acting_user=admin)
    branch_id = contact.subscriber.branch_id if contact else None
    if branch_id is not None:
        actions.do_create_job(
            installer=engineer,
            slot=actions.Slot(day=today, starts_at=dt.time(12, 0), ends_at=dt.time(14, 0)),
            prospect=actions.ProspectData(
                branch_id=branch_id,
                last_name="Новикова",
                first_name="Ольга",
                phone="+79165554433",
                city="Тверь",
                street="ул. Садовая",
                house="7",
                apartment="3",
            ),
            acting_user=admin,
        )
