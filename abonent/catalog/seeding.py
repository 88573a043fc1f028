"""Demo catalog: registered before subscriptions (see abonent.core.seeding).

A handful of rows, written through the catalog's actions (validated and audited like an operator's edits);
each is looked up by its code first, so running the step again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from abonent.core.seeding import SeedContext, seed_step

from . import actions
from .models import FreezePolicy, Plan, PromisedPaymentPolicy, Service, Turbo

PRICES_FROM = dt.date(2020, 1, 1)

SERVICES = [
    # code, name, kind, one-off price
    ("internet", "Интернет", "internet", None),
    ("static-ip", "Статический IP", "static_ip", None),
    ("installation", "Подключение", "one_off", Decimal("1500.00")),
]

# code, name, monthly fee, charge mode, speed in Mbit/s (down = up), description
PLANS = [
    ("internet-100", "Интернет-100", Decimal("650.00"), "monthly", 100, "Безлимитный интернет 100 Мбит/с."),
    ("home", "Домашний", Decimal("500.00"), "monthly", 50, "Для дома: 50 Мбит/с."),
    ("gamer", "Игровой", Decimal("900.00"), "monthly", 500, "500 Мбит/с для игр и стриминга."),
    (
        "internet-100-daily",
        "Интернет-100 посуточно",
        Decimal("650.00"),
        "daily",
        100,
        "100 Мбит/с, абонентская плата списывается каждый день.",
    ),
]
# code, name, speed in Mbit/s (down = up), hours, price, plans that sell it
TURBOS = [
    ("turbo-day", "Турбо 500 Мбит/с на сутки", 500, 24, Decimal("50.00"), ("home", "internet-100")),
    ("turbo-3h", "Турбо 1 Гбит/с на 3 часа", 1000, 3, Decimal("30.00"), ("home", "internet-100", "gamer")),
]
# Subscribers may switch between these themselves in the portal: every demo plan offers one, so whoever logs in to
# the demo's portal can try a change (the featured subscriber's "Интернет-100" an upgrade, with its amounts).
SWITCHABLE = [("home", "gamer"), ("gamer", "home"), ("internet-100", "gamer"), ("internet-100-daily", "internet-100")]


def _admin():
    from abonent.staff.models import StaffUser

    admin = StaffUser.objects.filter(role="admin", is_active=True).order_by("pk").first()
    if admin is None:
        raise RuntimeError("the catalog seed needs an active admin (the staff step runs first)")
    return admin


@seed_step("catalog", order=15)
def seed_catalog(ctx: SeedContext) -> None:
    admin = _admin()
    freeze, _ = FreezePolicy.objects.get_or_create(
        name="Стандартная заморозка",
        defaults={"min_days": 7, "max_days": 90, "yearly_quota_days": 90, "fee_per_day": Decimal("3.00")},
    )
    promised, _ = PromisedPaymentPolicy.objects.get_or_create(
        name="Обещанный платёж до 500 ₽",
        defaults={"max_amount": Decimal("500.00"), "days": 3, "max_debt": Decimal("300.00")},
    )
    services = {}
    for code, name, kind, one_off_price in SERVICES:
        services[code] = Service.objects.filter(code=code).first() or actions.do_create_service(
            code=code, name=name, kind=kind, one_off_price=one_off_price, acting_user=admin
        )
    plans = {}
    for code, name, fee, charge_mode, mbps, description in PLANS:
        plans[code] = Plan.objects.filter(code=code).first() or actions.do_create_plan(
            code=code,
            name=name,
            service=services["internet"],
            description=description,
            charge_mode=charge_mode,
            period_anchor="calendar",
            daily_pricing="split",
            download_kbps=mbps * 1000,
            upload_kbps=mbps * 1000,
            freeze_policy=freeze,
            promised_payment_policy=promised,
            monthly_fee=fee,
            valid_from=PRICES_FROM,
            acting_user=admin,
        )
    for code, name, mbps, hours, price, sold_on in TURBOS:
        turbo = Turbo.objects.filter(code=code).first() or actions.do_create_turbo(
            code=code,
            name=name,
            download_kbps=mbps * 1000,
            upload_kbps=mbps * 1000,
            hours=hours,
            price=price,
            acting_user=admin,
        )
        for plan_code in sold_on:
            plans[plan_code].turbos.add(turbo)
    for source, target in SWITCHABLE:
        plans[source].switchable_to.add(plans[target])
    ctx.facts["plans"] = {code: plan.pk for code, plan in plans.items()}
