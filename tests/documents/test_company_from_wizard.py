"""Documents print the company the first-run wizard stored, not the settings it replaced; without it, the settings."""

import pytest

from abonent.core.actions import do_save_company_profile
from abonent.documents import actions, content

from .conftest import NOVEMBER

pytestmark = pytest.mark.django_db

WIZARD_COMPANY = {
    "name": "ООО «Новая Связь»",
    "inn": "500100732259",  # an entrepreneur's 12 digits: no KPP
    "kpp": "",
    "ogrn": "304500116000157",
    "address": "141600, г. Клин, ул. Победы, д. 2",
    "bank": "ПАО Сбербанк",
    "bik": "044525225",
    "account": "40702810938000000001",
    "corr_account": "30101810400000000225",
    "director": "Новиков Н. Н.",
}


def test_the_seller_block_is_the_settings_until_the_wizard_stores_the_company(admin):
    assert content.seller_block()["name"] == "ООО «Связь»"  # tests/documents/conftest.py's settings

    do_save_company_profile(acting_user=admin, **WIZARD_COMPANY)

    seller = content.seller_block()
    assert seller["name"] == "ООО «Новая Связь»" and seller["inn"] == "500100732259"
    # The profile wins whole: the settings' KPP and accountant do not leak into an entrepreneur's documents.
    assert seller["kpp"] == "" and seller["accountant"] == ""
    assert seller["account"] == "40702810938000000001" and seller["director"] == "Новиков Н. Н."


def test_an_issued_act_carries_the_wizard_company(org, subscribe, admin, december):
    do_save_company_profile(acting_user=admin, **WIZARD_COMPANY)
    subscribe(org)

    issued = actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)

    act = next(d for d in issued.created if d.kind == "act")
    assert act.seller["name"] == "ООО «Новая Связь»" and act.seller["inn"] == "500100732259"
    assert act.seller["address"] == "141600, г. Клин, ул. Победы, д. 2"
