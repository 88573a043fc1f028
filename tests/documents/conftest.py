import datetime as dt
from decimal import Decimal

import pytest

from abonent.core import clock


@pytest.fixture(autouse=True)
def _documents_dir(settings, tmp_path):
    settings.ABONENT_DOCUMENTS_DIR = tmp_path / "documents"
    settings.ABONENT_COMPANY_NAME = "ООО «Связь»"
    settings.ABONENT_COMPANY_INN = "7707083893"
    settings.ABONENT_COMPANY_KPP = "770701001"
    settings.ABONENT_COMPANY_BANK = "ПАО Сбербанк, г. Москва"
    settings.ABONENT_COMPANY_BIK = "044525225"
    settings.ABONENT_COMPANY_ACCOUNT = "40702810900000000001"
    settings.ABONENT_COMPANY_CORR_ACCOUNT = "30101810400000000225"
    settings.ABONENT_COMPANY_DIRECTOR = "Петров П. П."
    settings.ABONENT_COMPANY_ACCOUNTANT = "Сидорова С. С."
    settings.ABONENT_COMPANY_ADDRESS = "170100, г. Тверь, ул. Советская, д. 1"
    settings.ABONENT_FISCAL_VAT = "auto"
    settings.ABONENT_FISCAL_SNO = "osn"
    settings.ABONENT_PUBLIC_URL = "https://billing.example.ru"


@pytest.fixture
def make_org(make_subscriber):
    def make(name="ООО «Ромашка»", inn="7736207543", **extra):
        return make_subscriber(
            kind="organization", organization_name=name, inn=inn, kpp="773601001",
            last_name="", first_name="", middle_name="", **extra,
        )  # fmt: skip

    return make


@pytest.fixture
def org(make_org):
    return make_org()


@pytest.fixture
def monthly(make_plan):
    """650 ₽ a calendar month."""
    return make_plan("internet-100", "650.00", name="Интернет-100")


@pytest.fixture
def subscribe(monthly, admin):
    """``subscribe(subscriber)``: on ``monthly`` from 1 November 2026 with 5,000 ₽ paid, November and December
    charged by the billing runs of 1 November and 1 December; the clock then stands on 2 December 2026."""
    from abonent.billing import actions
    from abonent.billing.testing import run_on

    def make(subscriber, *, paid="5000.00"):
        with clock.travel_to(dt.date(2026, 11, 1)):
            actions.do_post_payment(subscriber, amount=paid, channel="test", external_id=f"open-{subscriber.pk}")
            subscription = actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)
        run_on(dt.date(2026, 12, 1))
        return subscription

    return make


@pytest.fixture
def december():
    with clock.travel_to(dt.date(2026, 12, 2)):
        yield


NOVEMBER = dt.date(2026, 11, 1)
FEE = Decimal("650.00")
