"""The demo ISP's company details, and its wizard marked done: the demo is an ISP already at work, so its
administrator is not asked to set it up (the wizard's pages stay open, with the demo's answers in them)."""

from __future__ import annotations

from abonent.core import clock
from abonent.core.models import CompanyProfile, TaxSystem, VatMode
from abonent.core.seeding import SeedContext, seed_step

from .models import SetupStep, Step

# Real check digits (core.requisites), made-up company: the bank is Sberbank's Moscow BIK and correspondent account.
DEMO_COMPANY = {
    "name": "ООО «Демо-Связь»",
    "inn": "7707083893",
    "kpp": "770701001",
    "ogrn": "1027700132195",
    "address": "101000, г. Москва, ул. Примерная, д. 1",
    "phone": "+74950000000",
    "bank": "ПАО Сбербанк",
    "bik": "044525225",
    "account": "40702810938000000001",
    "corr_account": "30101810400000000225",
    "director": "Демидов Д. Д.",
    "accountant": "Счётова С. С.",
    "tax_system": TaxSystem.OSN,
    "vat_mode": VatMode.AUTO,
    "currency": "RUB",
    "time_zone": "Europe/Moscow",
}


@seed_step("company", order=70)
def seed_company(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    profile, _created = CompanyProfile.objects.get_or_create(pk=CompanyProfile.SINGLETON_ID, defaults=DEMO_COMPANY)
    profile.full_clean()
    for step in Step:
        SetupStep.objects.get_or_create(step=step, defaults={"completed_at": clock.now()})
