"""The first-run wizard: each step saved as sent, bad input refused at the field with nothing written, resumed
where it was left, the console's banner until it is done, the NAS's lines to paste."""

import html
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from abonent.catalog.models import Plan, Service
from abonent.core.company import company_details, tax_settings
from abonent.core.models import AuditEvent, Branch, CompanyProfile
from abonent.network.models import Nas
from abonent.payments.fiscal.content import vat_code_for
from abonent.setup.models import SetupStep
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db

COMPANY = {
    "name": "ООО «Связь»",
    "inn": "7707 083 893",  # pasted with spaces, as printed on the certificate
    "kpp": "770701001",
    "ogrn": "1027700132195",
    "address": "170100, г. Тверь, ул. Советская, д. 1",
    "phone": "+74822000000",
    "director": "Петров П. П.",
    "accountant": "",
    "bank": "ПАО Сбербанк",
    "bik": "044525225",
    "account": "40702810938000000001",
    "corr_account": "30101810400000000225",
}


@pytest.fixture
def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def post_company(client, **changes):
    return client.post("/staff/setup/company/", {**COMPANY, **changes})


def field_errors(response, name: str) -> str:
    """The text of the field's block (label, input, its errors) on the page."""
    block = re.search(rf'data-field="{name}".*?</div>\s*</div>', response.content.decode(), re.S)
    assert block, f"no field {name}"
    return html.unescape(block.group(0))


def walk(client, *, through: str):
    """Complete the steps in order up to and including ``through``."""
    steps = [
        ("company", lambda: post_company(client)),
        ("taxes", lambda: client.post("/staff/setup/taxes/", {"tax_system": "osn", "vat_mode": "auto"})),
        ("region", lambda: client.post("/staff/setup/region/", {"currency": "RUB", "time_zone": "Europe/Moscow"})),
        (
            "branches",
            lambda: (
                client.post("/staff/setup/branches/", {"branch-name": "Тверь", "branch-code": "tver"}),
                client.post("/staff/setup/branches/next/"),
            )[-1],
        ),
        (
            "nas",
            lambda: (
                client.post(
                    "/staff/setup/nas/",
                    {
                        "nas-name": "bras1",
                        "nas-ip_address": "10.0.0.2",
                        "nas-vendor": "mikrotik",
                        "nas-secret": "Abc123def456ghi789",
                        "nas-interim_interval": "300",
                        "nas-radius_address": "10.0.0.5",
                    },
                ),
                client.post("/staff/setup/nas/next/"),
            )[-1],
        ),
        (
            "plans",
            lambda: (
                client.post(
                    "/staff/setup/plans/",
                    {
                        "plan-name": "Интернет-100",
                        "plan-code": "internet-100",
                        "plan-monthly_fee": "650,00",
                        "plan-download_mbps": "100",
                        "plan-upload_mbps": "50",
                    },
                ),
                client.post("/staff/setup/plans/next/"),
            )[-1],
        ),
        ("payments", lambda: client.post("/staff/setup/payments/")),
    ]
    for name, send in steps:
        response = send()
        assert response.status_code == 302, (name, response.content.decode()[:3000])
        if name == through:
            return response
    raise AssertionError(through)


def test_the_company_step_stores_the_details_and_moves_on(admin_client, admin):
    response = post_company(admin_client)

    assert response.status_code == 302 and response["Location"] == "/staff/setup/taxes/"
    profile = CompanyProfile.objects.get()
    assert (profile.name, profile.inn, profile.kpp, profile.account) == (
        "ООО «Связь»",
        "7707083893",
        "770701001",
        "40702810938000000001",
    )
    assert list(SetupStep.objects.values_list("step", "completed_by")) == [("company", admin.pk)]
    created = AuditEvent.objects.get(action="core.company_created")
    assert created.actor == admin and created.after["inn"] == "7707083893"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"inn": "7707083894"}, "inn", "This INN's check digits do not match"),
        ({"inn": "77070838"}, "inn", "An INN is 10 digits (an organisation) or 12"),
        ({"kpp": ""}, "kpp", "An organisation has a KPP"),
        ({"ogrn": "1027700132196"}, "ogrn", "This OGRN's check digit does not match"),
        ({"bik": "04452522"}, "bik", "A BIK is 9 digits."),
        ({"account": "40702810838000000001"}, "account", "does not match the BIK"),
        ({"corr_account": "30101810400000000226"}, "corr_account", "does not match the BIK"),
        ({"bank": ""}, "bank", "Give all four bank details, or none."),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_bad_requisites_are_refused_at_the_field_and_nothing_is_written(admin_client, changes, field, message):
    response = post_company(admin_client, **changes)

    assert response.status_code == 422
    block = field_errors(response, field)
    assert message in block and 'aria-invalid="true"' in block
    assert not CompanyProfile.objects.exists()
    assert not SetupStep.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="core.").exists()


def test_an_entrepreneur_has_no_kpp_and_a_15_digit_ogrnip(admin_client):
    refused = post_company(admin_client, inn="500100732259", kpp="770701001", ogrn="1027700132195")
    assert refused.status_code == 422
    assert "An individual entrepreneur has no KPP." in field_errors(refused, "kpp")
    assert "An entrepreneur has a 15-digit OGRNIP." in field_errors(refused, "ogrn")

    accepted = post_company(admin_client, name="ИП Петров П. П.", inn="500100732259", kpp="", ogrn="304500116000157")
    assert accepted.status_code == 302
    assert CompanyProfile.objects.get().kpp == ""


def test_the_wizard_resumes_at_the_first_step_not_done_and_keeps_later_ones_closed(admin_client):
    walk(admin_client, through="taxes")

    assert admin_client.get("/staff/setup/")["Location"] == "/staff/setup/region/"
    # A step further on is not open yet: back to where the wizard stands.
    assert admin_client.get("/staff/setup/plans/")["Location"] == "/staff/setup/region/"
    # A step already done opens with what was saved.
    page = admin_client.get("/staff/setup/company/").content.decode()
    assert 'value="7707083893"' in page and 'data-step="company" data-done="1"' in page


def test_the_taxes_step_refuses_a_reduced_rate_on_the_general_system(admin_client):
    walk(admin_client, through="company")

    refused = admin_client.post("/staff/setup/taxes/", {"tax_system": "osn", "vat_mode": "vat105"})

    assert refused.status_code == 422
    assert "for a simplified tax system only" in refused.content.decode()
    assert CompanyProfile.objects.get().tax_system == ""
    assert not SetupStep.objects.filter(step="taxes").exists()


def test_receipts_and_documents_follow_the_taxes_chosen_in_the_wizard(admin_client, settings):
    settings.ABONENT_FISCAL_SNO, settings.ABONENT_FISCAL_VAT = "osn", "auto"
    import datetime as dt

    walk(admin_client, through="company")
    assert vat_code_for(dt.date(2026, 12, 1)) == "vat122"  # the settings stand in until the tax step

    admin_client.post("/staff/setup/taxes/", {"tax_system": "usn_income", "vat_mode": "auto"})
    assert tax_settings().tax_system == "usn_income"
    assert vat_code_for(dt.date(2026, 12, 1)) == "none"

    admin_client.post("/staff/setup/taxes/", {"tax_system": "usn_income", "vat_mode": "vat105"})
    assert vat_code_for(dt.date(2026, 12, 1)) == "vat105"


def test_the_region_step_says_which_environment_lines_to_change(admin_client, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    walk(admin_client, through="taxes")

    refused = admin_client.post("/staff/setup/region/", {"currency": "RUB", "time_zone": "Asia/Yekaterinbur"})
    assert refused.status_code == 422
    assert "Not a time zone" in field_errors(refused, "time_zone")
    assert not SetupStep.objects.filter(step="region").exists()

    saved = admin_client.post("/staff/setup/region/", {"currency": "rub", "time_zone": "Asia/Yekaterinburg"})
    assert saved["Location"] == "/staff/setup/region/"  # stays to show the lines
    page = admin_client.get(saved["Location"]).content.decode()
    assert "ABONENT_TIME_ZONE=Asia/Yekaterinburg" in page and "ABONENT_CURRENCY" not in page
    assert CompanyProfile.objects.get().currency == "RUB"


def test_branches_must_have_one_before_moving_on(admin_client):
    walk(admin_client, through="region")

    refused = admin_client.post("/staff/setup/branches/next/")
    assert refused.status_code == 422
    assert "Add at least one branch" in refused.content.decode()

    bad = admin_client.post(
        "/staff/setup/branches/", {"branch-name": "Клин", "branch-code": "klin", "branch-time_zone": "Klin"}
    )
    assert bad.status_code == 422 and not Branch.objects.exists()

    admin_client.post("/staff/setup/branches/", {"branch-name": "Клин", "branch-code": "klin"})
    assert admin_client.post("/staff/setup/branches/next/")["Location"] == "/staff/setup/nas/"
    assert AuditEvent.objects.filter(action="core.branch_created", object_repr="Клин").exists()


def test_the_nas_step_registers_the_nas_and_shows_the_lines_with_the_secret_once(admin_client, settings):
    settings.ABONENT_RADIUS_AUTH_PORT, settings.ABONENT_RADIUS_ACCT_PORT = 1812, 1813
    walk(admin_client, through="branches")
    data = {
        "nas-name": "bras1",
        "nas-ip_address": "10.0.0.2",
        "nas-vendor": "mikrotik",
        "nas-secret": "Abc123def456ghi789",
        "nas-interim_interval": "300",
        "nas-radius_address": "10.0.0.5",
    }

    response = admin_client.post("/staff/setup/nas/", data)

    assert response.status_code == 200
    page = response.content.decode()
    lines = re.search(r'<code id="nas-config-lines">(.*?)</code>', page, re.S).group(1).strip().splitlines()
    assert lines == [
        "/radius add service=ppp address=10.0.0.5 secret=Abc123def456ghi789 authentication-port=1812 "
        "accounting-port=1813 require-message-auth=yes-for-request-resp",
        "/ppp aaa set use-radius=yes accounting=yes interim-update=5m",
        "/radius incoming set accept=yes port=3799",
    ]
    nas = Nas.objects.get()
    assert (nas.name, nas.ip_address, nas.secret) == ("bras1", "10.0.0.2", "Abc123def456ghi789")
    assert SetupStep.objects.get(step="nas").data == {"nas_id": nas.pk, "radius_address": "10.0.0.5"}
    # The secret is not shown again.
    again = admin_client.get("/staff/setup/nas/").content.decode()
    assert "Abc123def456ghi789" not in again and "secret=&quot;&lt;secret&gt;&quot;" in again


def test_a_bad_nas_is_refused_and_nothing_is_written(admin_client):
    walk(admin_client, through="branches")

    response = admin_client.post(
        "/staff/setup/nas/",
        {
            "nas-name": "bras1",
            "nas-ip_address": "10.0.0.300",
            "nas-vendor": "accel_ppp",
            "nas-secret": "short, with comma",
            "nas-interim_interval": "30",
            "nas-radius_address": "10.0.0.5",
        },
    )

    assert response.status_code == 422
    assert "Enter a valid IPv4 or IPv6 address." in field_errors(response, "ip_address")
    assert "Latin letters, digits" in field_errors(response, "secret")
    assert "greater than or equal to 60" in field_errors(response, "interim_interval")
    assert not Nas.objects.exists() and not SetupStep.objects.filter(step="nas").exists()


def test_the_plans_step_makes_a_monthly_plan_under_the_internet_service(admin_client):
    walk(admin_client, through="nas")

    refused = admin_client.post(
        "/staff/setup/plans/",
        {"plan-name": "Ноль", "plan-code": "zero", "plan-monthly_fee": "-1", "plan-download_mbps": "0"},
    )
    assert refused.status_code == 422
    assert not Plan.objects.exists() and not Service.objects.exists()

    walk_response = admin_client.post(
        "/staff/setup/plans/",
        {
            "plan-name": "Интернет-100",
            "plan-code": "internet-100",
            "plan-monthly_fee": "650,00",
            "plan-download_mbps": "100",
            "plan-upload_mbps": "50",
        },
    )
    assert walk_response.status_code == 302
    plan = Plan.objects.get()
    assert (plan.download_kbps, plan.upload_kbps, plan.service.kind, plan.is_public) == (
        100_000,
        50_000,
        "internet",
        True,
    )
    assert str(plan.prices.get().monthly_fee) == "650.00"


def banner(client) -> str:
    """The banner as base.html fetches it after the page has loaded ("" when there is none)."""
    response = client.get("/staff/setup/banner/")
    assert response.status_code in (200, 204)
    return response.content.decode()


def test_the_end_screen_links_to_the_first_subscriber_and_the_banner_is_gone(admin_client, settings):
    settings.ABONENT_COMPANY_NAME = settings.ABONENT_COMPANY_NAME_PLACEHOLDER
    assert 'id="setup-banner-slot"' in admin_client.get("/staff/subscribers/").content.decode()
    assert 'id="setup-banner"' in banner(admin_client) and 'href="/staff/setup/"' in banner(admin_client)

    response = walk(admin_client, through="payments")

    assert response["Location"] == "/staff/setup/done/"
    done = admin_client.get("/staff/setup/done/").content.decode()
    assert 'id="setup-ready"' in done and 'href="/staff/subscribers/new/" id="setup-new-subscriber"' in done
    assert SetupStep.objects.count() == 7
    assert banner(admin_client) == ""


def test_the_banner_only_for_administrators_of_a_new_installation(admin_client, make_staff, settings):
    operator = Client()
    operator.force_login(make_staff(Role.OPERATOR))
    settings.ABONENT_COMPANY_NAME = settings.ABONENT_COMPANY_NAME_PLACEHOLDER
    assert 'id="setup-banner-slot"' not in operator.get("/staff/subscribers/").content.decode()
    assert operator.get("/staff/setup/banner/").status_code == 403
    assert 'id="setup-banner"' in banner(admin_client)
    assert 'id="setup-banner-slot"' not in admin_client.get("/staff/setup/company/").content.decode()

    # An installation whose environment names its company was set up before the wizard: no banner.
    settings.ABONENT_COMPANY_NAME = "ООО «Связь»"
    assert banner(admin_client) == ""


def test_the_banner_costs_the_page_no_query(admin_client, settings):
    settings.ABONENT_COMPANY_NAME = settings.ABONENT_COMPANY_NAME_PLACEHOLDER
    with CaptureQueriesContext(connection) as page:
        admin_client.get("/staff/subscribers/")
    assert not any("setup_setupstep" in query["sql"] for query in page.captured_queries)


def test_only_the_administrator_runs_the_wizard(make_staff):
    client = Client()
    client.force_login(make_staff(Role.OPERATOR))

    assert client.get("/staff/setup/company/").status_code == 403
    assert client.post("/staff/setup/company/", COMPANY).status_code == 403
    assert not CompanyProfile.objects.exists()


def test_the_company_page_starts_from_the_settings_of_an_older_installation(admin_client, settings):
    settings.ABONENT_COMPANY_NAME, settings.ABONENT_COMPANY_INN = "ООО «Старая»", "7707083893"

    page = admin_client.get("/staff/setup/company/").content.decode()

    assert 'value="ООО «Старая»"' in page and 'value="7707083893"' in page
    assert company_details().source == "settings"


def test_continue_without_a_nas_is_refused_with_the_reason(admin_client):
    walk(admin_client, through="branches")

    refused = admin_client.post("/staff/setup/nas/next/")

    assert refused.status_code == 422
    page = refused.content.decode()
    assert "Register the NAS first" in page and "on UDP 1812, and reports traffic on 1813;" in page
    assert not SetupStep.objects.filter(step="nas").exists()


def test_the_payment_channels_step_says_what_takes_money(admin_client):
    walk(admin_client, through="plans")

    page = admin_client.get("/staff/setup/payments/").content.decode()

    assert 'data-channel="cash"' in page and 'href="/staff/payments/cashdesk/"' in page
    assert 'data-channel="gateway-yookassa" data-configured="0"' in page and 'href="/staff/payments/gateways/"' in page
    assert "0 agents" in page


def test_the_menu_links_the_audit_log_and_the_wizard_by_permission(admin_client, operator_client):
    admin_page = admin_client.get("/staff/subscribers/").content.decode()
    operator_page = operator_client.get("/staff/subscribers/").content.decode()

    assert 'href="/staff/audit/"' in admin_page and 'href="/staff/setup/"' in admin_page
    assert 'href="/staff/audit/"' in operator_page and 'href="/staff/setup/"' not in operator_page
