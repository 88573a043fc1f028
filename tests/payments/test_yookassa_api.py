"""The online-payment API for the portal, the console's Gateways page, and the YooKassa adapter's reading of
the provider's answers (errors, declines, deadlines)."""

from decimal import Decimal

import httpx
import pytest
from django.test import Client

from abonent.billing import ledger
from abonent.billing.selectors import get_balance as balance_of
from abonent.payments.gateways import GatewayError
from abonent.payments.gateways.yookassa import YooKassa, address_trusted, payment_of
from abonent.payments.models import Checkout, ProviderEvent
from abonent.staff.permissions import Role

from .yookassa_fake import SECRET, SHOP_ID, YOOKASSA_ADDR, fake_fixture, yookassa_fixture  # noqa: F401

D = Decimal
URL = "/api/v1/subscribers/{}/online-payments"


def post(client, subscriber, body, key="key-1"):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(URL.format(subscriber.pk), body, content_type="application/json", headers=headers)


@pytest.fixture
def cashier_api(make_staff):
    from abonent.staff.actions import do_create_api_token

    _token, plaintext = do_create_api_token(user=make_staff(Role.CASHIER, username="till"), name="portal")
    return Client(headers={"Authorization": f"Bearer {plaintext}"})


@pytest.mark.django_db
def test_the_portal_starts_a_payment_and_follows_it(yookassa, cashier_api, subscriber):
    response = post(cashier_api, subscriber, {"amount": "650.00", "method_type": "bank_card"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["amount"] == "650.00" and body["method_type"] == "bank_card"
    assert body["confirmation_url"].startswith("https://yoomoney.ru/checkout/") and body["payment_id"] is None
    # A retry with the same key is the same checkout: YooKassa was asked once.
    again = post(cashier_api, subscriber, {"amount": "650.00", "method_type": "bank_card"})
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    assert len(yookassa.posts("/v3/payments")) == 1

    paid = yookassa.succeed(body["provider_payment_id"])
    Client().post(
        "/pay/yookassa/notifications",
        data=yookassa.notice("payment.succeeded", paid),
        content_type="application/json",
        REMOTE_ADDR=YOOKASSA_ADDR,
    )
    seen = cashier_api.get(f"/api/v1/online-payments/{body['id']}").json()
    assert seen["status"] == "succeeded" and seen["payment_id"] is not None and seen["finished_at"]
    assert balance_of(subscriber).balance == D("650.00") and ledger.verify() == []


@pytest.mark.django_db
def test_sbp_answers_with_the_qr_data(yookassa, cashier_api, subscriber):
    body = post(cashier_api, subscriber, {"amount": "100", "method_type": "sbp"}).json()
    assert body["qr_payload"].startswith("https://qr.nspk.ru/") and body["confirmation_url"] is None


@pytest.mark.django_db
def test_bad_requests_get_field_codes_and_start_nothing(yookassa, cashier_api, subscriber):
    no_key = post(cashier_api, subscriber, {"amount": "100.00"}, key=None)
    assert no_key.status_code == 400 and no_key.json()["error"]["code"] == "idempotency_key_required"

    no_consent = post(cashier_api, subscriber, {"amount": "100.00", "save_method": True}, key="k2")
    assert no_consent.status_code == 422
    assert no_consent.json()["error"]["fields"][0] == {
        "field": "consent_text",
        "code": "consent_required",
        "message": "Saving the method for autopay needs the consent text the subscriber agreed to.",
    }
    for amount, key in (("0", "k3"), ("-5", "k4"), ("700000.01", "k5"), ("1e3", "k6"), ("12.345", "k7")):
        assert post(cashier_api, subscriber, {"amount": amount}, key=key).status_code == 422, amount
    assert post(cashier_api, subscriber, {"amount": "1", "method_type": "cash"}, key="k8").status_code == 422
    assert (
        post(cashier_api, subscriber, {"amount": "1", "return_url": "javascript:alert(1)"}, key="k9").status_code == 422
    )
    assert Checkout.objects.count() == 0 and yookassa.requests == []

    post(cashier_api, subscriber, {"amount": "100.00"}, key="same")
    reused = post(cashier_api, subscriber, {"amount": "900.00"}, key="same")
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert Checkout.objects.count() == 1


@pytest.mark.django_db
def test_only_staff_who_take_payments_and_see_the_branch(yookassa, subscriber, make_staff, other_branch, api_client):
    from abonent.staff.actions import do_create_api_token

    def client_of(role, **kw):
        _token, plaintext = do_create_api_token(user=make_staff(role, **kw), name="t")
        return Client(headers={"Authorization": f"Bearer {plaintext}"})

    assert post(client_of(Role.OPERATOR), subscriber, {"amount": "100.00"}).status_code == 403
    assert post(client_of(Role.CASHIER, branches=[other_branch]), subscriber, {"amount": "100.00"}).status_code == 404
    assert Client().post(URL.format(subscriber.pk), {"amount": "1"}, content_type="application/json").status_code == 401
    assert Checkout.objects.count() == 0
    started = post(api_client, subscriber, {"amount": "100.00"}).json()
    assert (
        client_of(Role.CASHIER, branches=[other_branch]).get(f"/api/v1/online-payments/{started['id']}").status_code
        == 404
    )


@pytest.mark.django_db
def test_without_a_configured_gateway_the_api_says_so(cashier_api, subscriber):
    response = post(cashier_api, subscriber, {"amount": "100.00"})
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["code"] == "gateway_not_configured"
    assert Client().post("/pay/yookassa/notifications", b"{}", content_type="application/json").status_code == 404


@pytest.mark.django_db
def test_the_gateways_page_shows_the_setup_but_never_the_secret(yookassa, admin, cashier, subscriber):
    post_client = Client()
    post_client.post(
        "/pay/yookassa/notifications", data=b"{}", content_type="application/json", REMOTE_ADDR="198.51.100.1"
    )
    client = Client()
    client.force_login(admin)
    page = client.get("/staff/payments/gateways/")
    assert page.status_code == 200
    html = page.content.decode()
    assert SHOP_ID in html and SECRET not in html
    assert "http://testserver/pay/yookassa/notifications" in html
    assert 'data-outcome="rejected"' in html and "198.51.100.1" in html
    assert ProviderEvent.objects.count() == 1

    denied = Client()
    denied.force_login(cashier)
    assert denied.get("/staff/payments/gateways/").status_code == 403


# --- the adapter ----------------------------------------------------------------------------------------------


def gateway(url: str, **kw) -> YooKassa:
    return YooKassa(shop_id=SHOP_ID, secret_key=SECRET, api_url=url, **kw)


def test_a_4xx_is_final_with_the_providers_code_and_a_5xx_or_timeout_is_retryable(httpserver):
    httpserver.expect_oneshot_request("/v3/payments").respond_with_json(
        {"type": "error", "id": "x", "code": "invalid_request", "description": "amount.value is wrong"}, status=400
    )
    httpserver.expect_oneshot_request("/v3/payments").respond_with_json({"type": "error"}, status=500)
    httpserver.expect_oneshot_request("/v3/payments").respond_with_json({"type": "processing"}, status=202)
    yk = gateway(httpserver.url_for("/v3"))
    args = {"amount": D("1.00"), "description": "x", "key": "checkout:1", "return_url": "https://x.example/"}

    with pytest.raises(GatewayError) as refused:
        yk.create_payment(**args)
    assert not refused.value.retryable and refused.value.code == "invalid_request"
    with pytest.raises(GatewayError) as failed:
        yk.create_payment(**args)
    assert failed.value.retryable
    with pytest.raises(GatewayError) as processing:
        yk.create_payment(**args)
    assert processing.value.retryable and processing.value.code == "processing"

    unreachable = gateway("http://127.0.0.1:9/v3", connect_timeout=0.5, read_timeout=0.5)
    with pytest.raises(GatewayError) as down:
        unreachable.get_payment("abc")
    assert down.value.retryable
    assert isinstance(unreachable.timeout, httpx.Timeout) and unreachable.timeout.connect == 0.5


def test_every_post_carries_our_key_and_basic_auth(httpserver):
    seen = []

    def answer(request):
        seen.append((request.headers.get("Idempotence-Key"), request.headers.get("Authorization"), request.get_json()))
        from werkzeug import Response

        return Response('{"id": "p1", "status": "pending", "amount": {"value": "10.00", "currency": "RUB"}}')

    httpserver.expect_request("/v3/payments", method="POST").respond_with_handler(answer)
    found = gateway(httpserver.url_for("/v3")).create_payment(
        amount=D("10"), description="Пополнение", key="checkout:7", return_url="https://x.example/", save_method=True
    )
    assert found.id == "p1" and found.amount == D("10.00")
    key, auth, body = seen[0]
    assert key == "checkout:7" and auth.startswith("Basic ")
    assert body["amount"] == {"value": "10.00", "currency": "RUB"} and body["capture"] is True
    assert body["save_payment_method"] is True and body["confirmation"]["type"] == "redirect"
    with pytest.raises(ValueError):
        gateway(httpserver.url_for("/v3")).create_payment(amount=D("1"), description="", key="", return_url="")


@pytest.mark.parametrize(
    ("reason", "soft"),
    [
        ("insufficient_funds", True),
        ("issuer_unavailable", True),
        ("payment_method_limit_exceeded", True),
        ("card_expired", False),
        ("fraud_suspected", False),
        ("permission_revoked", False),
        ("invalid_card_number", False),
    ],
)
def test_declines_are_soft_or_hard_by_their_reason(reason, soft):
    found = payment_of(
        {
            "id": "p",
            "status": "canceled",
            "amount": {"value": "1.00", "currency": "RUB"},
            "cancellation_details": {"party": "issuer", "reason": reason},
        }
    )
    assert (found.decline_code, found.decline_soft) == (reason, soft)


def test_notification_networks(settings):
    assert address_trusted("77.75.153.10") and address_trusted("185.71.77.31")
    assert address_trusted("::ffff:185.71.76.1")  # an IPv4 peer on a dual-stack socket
    assert address_trusted("2a02:5180:0:1509::1")
    assert not address_trusted("77.75.153.200") and not address_trusted("127.0.0.1")
    assert not address_trusted("") and not address_trusted(None) and not address_trusted("nonsense")


def test_a_charge_of_a_saved_method_declined_says_whether_to_retry(httpserver):
    httpserver.expect_request("/v3/payments", method="POST").respond_with_json(
        {
            "id": "p2",
            "status": "canceled",
            "paid": False,
            "amount": {"value": "650.00", "currency": "RUB"},
            "payment_method": {"type": "bank_card", "id": "pm-1", "saved": True},
            "cancellation_details": {"party": "card_network", "reason": "permission_revoked"},
        }
    )
    found = gateway(httpserver.url_for("/v3")).charge_saved_method(
        amount=D("650.00"), method_id="pm-1", description="Автоплатёж", key="autopay:1"
    )
    assert found.status == "canceled" and found.decline_code == "permission_revoked" and not found.decline_soft


def test_the_gateway_is_offered_at_start_only_when_configured(settings, monkeypatch):
    from django.apps import apps

    from abonent.core.scheduler import registered_jobs
    from abonent.payments import channels
    from abonent.payments.gateways import base

    monkeypatch.setattr(base, "_factories", {})
    monkeypatch.setattr(channels, "_clearing_channels", set())
    monkeypatch.setattr(channels, "_online_refunds", {})
    settings.ABONENT_YOOKASSA_SHOP_ID, settings.ABONENT_YOOKASSA_SECRET_KEY = SHOP_ID, ""
    apps.get_app_config("payments").ready()
    assert base.registered() == [] and not channels.is_gateway("yookassa")

    settings.ABONENT_YOOKASSA_SECRET_KEY = SECRET
    apps.get_app_config("payments").ready()
    assert base.registered() == ["yookassa"] and channels.is_gateway("yookassa")
    assert channels.online_refund("yookassa") is not None
    assert "payments.sync_gateways" in registered_jobs()


@pytest.mark.django_db
def test_the_worker_job_runs_both_sweeps(yookassa):
    from abonent.payments.tasks import sync_gateways

    assert sync_gateways.call() == {"checked": 0, "succeeded": 0, "failed": 0, "errors": 0, "refunds": 0}


def test_production_refuses_sending_the_secret_key_over_plain_http(import_settings):
    production = {
        "ABONENT_ENV": "production",
        "ABONENT_SECRET_KEY": "q7Zc1Xo3mD9vKf2LwTa8Rj5NbYh0GpUe4SiCxVr6EkHn_Ml-Ot7QzWy1Pd3Fs8Bg2Aj9",
        "ABONENT_ALLOWED_HOSTS": "billing.example.ru",
        "ABONENT_YOOKASSA_SHOP_ID": SHOP_ID,
        "ABONENT_YOOKASSA_SECRET_KEY": SECRET,
    }
    assert import_settings(production).returncode == 0
    refused = import_settings({**production, "ABONENT_YOOKASSA_API_URL": "http://api.yookassa.ru/v3"})
    assert refused.returncode != 0 and "ABONENT_YOOKASSA_API_URL must be an https:// address" in refused.stderr


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_once_start_one_payment(yookassa, api_token, subscriber, together):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")

    def send():
        client = Client(headers={"Authorization": f"Bearer {api_token}"})
        response = post(client, subscriber, {"amount": "300.00"}, key="twice")
        return response.status_code, response.json()["id"]

    out = together(send, send)

    assert out[0] == out[1] and out[0][0] == 201
    assert Checkout.objects.count() == 1 and len(yookassa.posts("/v3/payments")) == 1
