"""Prepaid cards through the pages and the API: the portal's Pay tab, ``POST /api/v1/my/vouchers/activate``, the
public Wi-Fi page, the console's series pages, the printed sheet, and who may do what."""

from __future__ import annotations

import json
import subprocess
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from abonent.core.models import AuditEvent
from abonent.network.models import Login
from abonent.portal.models import SessionKind
from abonent.portal.sessions import COOKIE, open_session
from abonent.vouchers import codes
from abonent.vouchers.models import Voucher, VoucherSeries, VoucherStatus
from abonent.vouchers.testing import balance, card, code_of


def signed_in(subscriber) -> Client:
    _session, secret = open_session(subscriber, kind=SessionKind.WEB)
    client = Client()
    client.cookies[COOKIE] = secret
    return client


def app_of(subscriber) -> Client:
    _session, token = open_session(subscriber, kind=SessionKind.API)
    return Client(headers={"Authorization": f"Bearer {token}"})


def _activate(client, code, key="k-1"):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/api/v1/my/vouchers/activate", json.dumps({"code": code}), content_type="application/json", headers=headers
    )


def test_the_portal_tab_credits_a_card(series, make_subscriber):
    subscriber = make_subscriber()
    client = signed_in(subscriber)
    assert client.get(reverse("portal:pay_card")).status_code == 200
    response = client.post(reverse("portal:pay_card"), {"code": code_of(card(series, 1))})
    assert response.status_code == 302
    assert balance(subscriber) == Decimal("500.00")
    page = client.get(reverse("portal:pay_card")).content.decode()
    assert card(series, 1).serial in page


def test_the_portal_tab_tells_a_typo_from_an_unknown_code(series, make_subscriber):
    client = signed_in(make_subscriber())
    good = code_of(card(series, 1))
    typo = client.post(reverse("portal:pay_card"), {"code": good[:-1] + ("2" if good[-1] != "2" else "3")})
    unknown = client.post(reverse("portal:pay_card"), {"code": codes.printed(codes.generate())})
    assert typo.status_code == unknown.status_code == 422
    assert "check the characters" in typo.content.decode()
    assert "No card has this code" in unknown.content.decode()


def test_the_api_activates_once_and_requires_a_key(series, make_subscriber):
    subscriber = make_subscriber()
    app = app_of(subscriber)
    code = code_of(card(series, 2))
    assert _activate(app, code, key=None).status_code == 400
    first = _activate(app, code)
    assert first.status_code == 200, first.content
    assert first.json() == {"serial": card(series, 2).serial, "amount": "500.00", "balance": "500.00", "created": True}
    replayed = _activate(app, code)  # the same key: the stored answer
    assert replayed.status_code == 200 and replayed.json() == first.json()
    retry = _activate(app, code, key="k-2")  # a new key: the card knows it was this subscriber's
    assert retry.status_code == 200 and retry.json()["created"] is False
    assert balance(subscriber) == Decimal("500.00")


def test_the_api_refuses_another_subscribers_card_and_rate_limits(series, make_subscriber, settings):
    settings.ABONENT_VOUCHER_MAX_FAILURES = 2
    owner, other = make_subscriber(), make_subscriber(phone="+79161110000", last_name="Петров")
    _activate(app_of(owner), code_of(card(series, 3)))
    app = app_of(other)
    used = _activate(app, code_of(card(series, 3)))
    assert used.status_code == 422
    assert used.json()["error"]["fields"][0]["code"] == "card_used"
    assert _activate(app, codes.generate()).status_code == 422
    locked = _activate(app, code_of(card(series, 4)))
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
    assert balance(other) == Decimal("0.00")
    assert card(series, 4).status == VoucherStatus.SOLD


def test_the_public_wifi_page_shows_the_login(wifi_series):
    client = Client()
    assert client.get("/my/wifi/").status_code == 200
    code = code_of(card(wifi_series, 1))
    response = client.post("/my/wifi/", {"code": code})
    assert response.status_code == 200
    page = response.content.decode()
    assert f"wifi-{card(wifi_series, 1).serial}" in page and code in page
    assert "no-store" in response["Cache-Control"]
    assert Login.objects.get(username=f"wifi-{card(wifi_series, 1).serial}").password == code


def test_the_console_lists_series_with_counts_and_only_managers_change_them(series, admin, operator, client):
    client.force_login(operator)
    page = client.get(reverse("vouchers:list")).content.decode()
    assert series.name in page
    detail = client.get(reverse("vouchers:series", args=[series.pk])).content.decode()
    assert 'data-status="sold">' in detail
    assert client.get(reverse("vouchers:sheet", args=[series.pk])).status_code == 403
    assert (
        client.post(reverse("vouchers:void", args=[series.pk]), {"first": 1, "last": 10, "reason": "x"}).status_code
        == 403
    )
    assert Voucher.objects.filter(status=VoucherStatus.VOID).count() == 0


def test_a_series_created_and_a_range_sold_in_the_console(admin, dealer, client):
    client.force_login(admin)
    response = client.post(
        reverse("vouchers:series_new"),
        {"name": "Осень-300", "kind": "topup", "amount": "300", "count": "4", "expires_on": "2027-06-30"},
    )
    assert response.status_code == 302
    series = VoucherSeries.objects.get(name="Осень-300")
    key = uuid.uuid4().hex
    for _ in range(2):  # the form sent twice
        client.post(
            reverse("vouchers:sell", args=[series.pk]), {"dealer": dealer.pk, "first": 1, "last": 2, "key": key}
        )
    assert Voucher.objects.filter(series=series, status=VoucherStatus.SOLD).count() == 2


def test_the_sheet_is_a_pdf_with_the_cards_and_its_print_is_audited(series, admin, client):
    client.force_login(admin)
    response = client.get(reverse("vouchers:sheet", args=[series.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = subprocess.run(["pdftotext", "-", "-"], input=response.content, capture_output=True, check=True).stdout
    text = text.decode()
    assert card(series, 1).serial in text
    assert code_of(card(series, 1)) in text
    assert AuditEvent.objects.filter(action="vouchers.sheet_printed").count() == 1


def test_a_subscriber_signed_in_to_the_portal_cannot_reach_the_console(series, make_subscriber):
    client = signed_in(make_subscriber())
    response = client.get(reverse("vouchers:series", args=[series.pk]))
    assert response.status_code in (302, 403)
    assert series.name not in response.content.decode()


def test_the_operator_activates_from_the_card_panel(series, make_subscriber, operator, client):
    subscriber = make_subscriber()
    client.force_login(operator)
    response = client.post(
        reverse("vouchers:activate", args=[subscriber.pk]), {"code": code_of(card(series, 5))}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert balance(subscriber) == Decimal("500.00")
    assert client.get(reverse("subscribers:card", args=[subscriber.pk])).status_code == 200


@pytest.mark.parametrize("path", ["/my/pay/card/", "/my/bonuses/"])
def test_portal_pages_need_a_signed_in_subscriber(path, db):
    response = Client().get(path)
    assert response.status_code == 302
