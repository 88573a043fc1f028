"""The console: an individual price on the card (set, shown with its reason and dates, ended) and the pricing
page (group prices, promotions, bundles)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import actions
from abonent.billing.models import Charge, ChargeKind
from abonent.billing.pricing.models import Bundle, PriceOverride, Promotion
from abonent.billing.testing import run_on
from abonent.catalog import actions as catalog
from abonent.subscribers.models import SubscriberGroup

D = Decimal
NOV, DEC = dt.date(2026, 11, 1), dt.date(2026, 12, 1)


@pytest.fixture
def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def subscription(monthly, subscriber, admin, on):
    with on(NOV):
        return actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)


def card(client, subscriber) -> str:
    response = client.get(f"/staff/subscribers/{subscriber.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_individual_price_set_on_the_card_shown_charged_and_ended(admin_client, subscriber, subscription, on):
    url = f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/price/"
    with on(NOV):
        bad = admin_client.post(
            url, {"monthly_fee": "-1", "valid_from": "2026-12-01", "reason": "x"}, headers={"HX-Request": "true"}
        )
        assert bad.status_code == 422 and not PriceOverride.objects.exists()
        done = admin_client.post(
            url,
            {"monthly_fee": "499,90", "valid_from": "2026-12-01", "reason": "Договор 17"},
            headers={"HX-Request": "true"},
        )
    assert done.status_code == 200
    override = PriceOverride.objects.get()
    assert (override.monthly_fee, override.subscription_id, override.plan_id) == (
        D("499.90"),
        subscription.pk,
        subscription.plan_id,
    )
    with on(DEC):
        page = card(admin_client, subscriber)
    assert 'id="price-' in page and "Договор 17" in page and "499.90" in page, page[page.find('id="price-') :][:600]
    run_on(DEC)
    assert Charge.objects.get(subscription=subscription, kind=ChargeKind.FEE, period_start=DEC).amount == D("499.90")
    with on(DEC):
        ended = admin_client.post(
            f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/price/end/",
            {"valid_until": "2026-12-31", "reason": "конец договора"},
            headers={"HX-Request": "true"},
        )
    assert ended.status_code == 200
    override.refresh_from_db()
    assert override.valid_until == dt.date(2026, 12, 31)


def test_operators_see_no_price_form_and_cannot_post(operator_client, subscriber, subscription, on):
    with on(NOV):
        page = card(operator_client, subscriber)
        response = operator_client.post(
            f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/price/",
            {"monthly_fee": "1", "valid_from": "2026-12-01", "reason": "x"},
        )
    assert 'data-form="price-' not in page
    assert response.status_code == 403 and not PriceOverride.objects.exists()


def test_pricing_page_group_price_promotion_and_bundle(admin_client, operator_client, monthly, admin, on):
    group = SubscriberGroup.objects.create(name="Школа")
    tv = catalog.do_create_plan(
        code="tv",
        name="ТВ",
        monthly_fee=D("350"),
        valid_from=dt.date(2020, 1, 1),
        acting_user=admin,
        service=catalog.do_create_service(code="iptv", name="ТВ", kind="iptv", acting_user=admin),
    )
    with on(NOV):
        assert admin_client.get("/staff/pricing/").status_code == 200
        group_price = admin_client.post(
            "/staff/pricing/group-prices/",
            {
                "group": group.pk,
                "plan": monthly.pk,
                "monthly_fee": "400",
                "valid_from": "2026-12-01",
                "reason": "Школы",
            },
        )
        too_much = admin_client.post(
            "/staff/pricing/promotions/", {"name": "x", "kind": "percent", "value": "150", "stacking": "best"}
        )
        promotion = admin_client.post(
            "/staff/pricing/promotions/", {"name": "Зима", "kind": "percent", "value": "20", "stacking": "best"}
        )
        bundle = admin_client.post(
            "/staff/pricing/bundles/",
            {"name": "Интернет+ТВ", "plans": [monthly.pk, tv.pk], "total": "800", "valid_from": "2026-11-01"},
        )
        page = operator_client.get("/staff/pricing/").content.decode()
        forbidden = operator_client.post(
            "/staff/pricing/promotions/", {"name": "x", "kind": "amount", "value": "1", "stacking": "best"}
        )
    assert (group_price.status_code, promotion.status_code, bundle.status_code) == (302, 302, 302)
    assert too_much.status_code == 422 and "100" in too_much.content.decode()
    assert forbidden.status_code == 403
    assert PriceOverride.objects.get().group_id == group.pk
    assert Promotion.objects.get().name == "Зима"
    assert sorted(Bundle.objects.get().items.values_list("share", flat=True)) == [D("280.00"), D("520.00")]
    assert "Школа" in page and "Зима" in page and "Интернет+ТВ" in page and 'action="/staff/pricing/' not in page
