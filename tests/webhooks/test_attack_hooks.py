"""Attack review of the webhooks: receivers on this host or the metadata service, decompression bombs, a delivery
whose sender keeps dying, money readable without the payments scope."""

import datetime as dt
import json
import tracemalloc
from pathlib import Path

import brotli
import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from werkzeug import Response

from abonent.api.errors import ApiError
from abonent.core import clock
from abonent.integrations.webhooks import actions, events, scopes, sending
from abonent.integrations.webhooks.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EventType,
    Scope,
    WebhookEvent,
)

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"


def _queue_one(key="subscriber.created:1"):
    events.enqueue(EventType.SUBSCRIBER_CREATED, [(key, {"subscriber": {"id": 1}})])


# SSRF ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://localhost/hook",
        "http://crm.localhost/hook",
        "http://LocalHost./hook",
        "http://0177.0.0.1/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
    ],
)
def test_a_receiver_on_this_host_or_link_local_is_refused(admin, settings, url):
    settings.ABONENT_WEBHOOK_ALLOW_LOCAL = False
    with pytest.raises(ValidationError) as refused:
        actions.do_create_endpoint(
            actions.EndpointData(name="CRM", url=url, event_types=[EventType.SUBSCRIBER_CREATED]), acting_user=admin
        )
    assert [e.code for e in refused.value.error_dict["url"]] == ["local_address"]
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("url", ["http://10.0.0.5/hook", "https://192.168.1.10:8443/crm", "http://crm.lan/hook"])
def test_a_receiver_on_the_lan_is_allowed(admin, settings, url):
    settings.ABONENT_WEBHOOK_ALLOW_LOCAL = False
    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url=url, event_types=[EventType.SUBSCRIBER_CREATED]), acting_user=admin
    )
    assert endpoint.url == url


def test_a_name_that_resolves_to_this_host_is_not_posted_to(hook, httpserver, settings):
    # Given an integration whose name resolves to loopback when the POST is made (DNS rebinding, /etc/hosts)
    endpoint, _secret = hook(types=[EventType.SUBSCRIBER_CREATED])
    Endpoint.objects.filter(pk=endpoint.pk).update(url=endpoint.url.replace("127.0.0.1", "localhost"))
    httpserver.expect_request("/crm/hook", method="POST").respond_with_data("ok")
    settings.ABONENT_WEBHOOK_ALLOW_LOCAL = False
    _queue_one()

    # When the worker sends
    counts = sending.send_due()

    # Then no request reached the local service, and the delivery failed at once, saying why
    assert httpserver.log == []
    assert counts == {"failed": 1}
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "local address" in delivery.last_error


# A hostile answer ------------------------------------------------------------------------------------------------


def test_a_compressed_answer_is_not_inflated(hook, httpserver):
    # Given a receiver that answers a few kB of brotli that inflate to 256 MB
    bomb = brotli.compress(b"a" * (256 * 1024 * 1024), quality=1)
    assert len(bomb) < 300_000
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook", method="POST").respond_with_response(
        Response(bomb, status=200, headers={"Content-Encoding": "br", "Content-Type": "text/plain"})
    )
    _queue_one()

    # When the worker sends, its memory does not go up by what the answer inflates to
    tracemalloc.start()
    try:
        counts = sending.send_due()
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts == {"delivered": 1}
    assert peak < 16 * 1024 * 1024
    assert len(Attempt.objects.get().response_excerpt.encode()) <= 4 * sending.RESPONSE_EXCERPT
    # And the receiver was asked for no compression at all
    assert httpserver.log[0][0].headers["Accept-Encoding"] == "identity"


def test_an_answer_with_a_nul_byte_is_recorded(hook, httpserver):
    # Given a receiver whose answer holds a NUL byte (PostgreSQL's text refuses it)
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook", method="POST").respond_with_data(b"ok\x00done", status=200)
    _queue_one()

    # When the worker sends, the outcome is recorded (the sender does not crash and POST it again later)
    assert sending.send_due() == {"delivered": 1}
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert Attempt.objects.get().response_excerpt == "ok\ufffddone"


# A delivery whose sender keeps dying --------------------------------------------------------------------------------


def test_a_delivery_whose_leases_keep_running_out_fails_and_does_not_block_the_queue(hook, httpserver):
    # Given a delivery claimed 32767 times by senders that died holding it (its attempts at the column's limit),
    # and another one due
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook", method="POST").respond_with_data("ok")
    t0 = clock.now()
    _queue_one("subscriber.created:1")
    stuck = Delivery.objects.get()
    Delivery.objects.filter(pk=stuck.pk).update(attempts=32767, next_attempt_at=t0 - dt.timedelta(hours=1))
    _queue_one("subscriber.created:2")

    # When the worker runs
    counts = sending.send_due()

    # Then the other one is delivered, and the stuck one is failed without another POST
    stuck.refresh_from_db()
    assert stuck.status == DeliveryStatus.FAILED
    assert "lease" in stuck.last_error
    assert Delivery.objects.exclude(pk=stuck.pk).get().status == DeliveryStatus.DELIVERED
    assert len(httpserver.log) == 1
    assert json.loads(httpserver.log[0][0].get_data())["data"]["subscriber"]["id"] == 1
    assert counts == {"delivered": 1, "failed": 1}


# Scopes, walked over the whole API ------------------------------------------------------------------------------

MONEY_WORDS = ("charge", "payment", "balance", "ledger", "adjustment", "refund", "credit-limit", "autopay", "reversal")


def _operations():
    document = json.loads(OPENAPI.read_text())
    for path, operations in document["paths"].items():
        for method in operations:
            yield method.upper(), path


def test_every_money_path_of_the_api_wants_the_payments_scope():
    money = [
        path
        for _method, path in _operations()
        if any(word in path for word in MONEY_WORDS) and not path.startswith("/api/v1/my/")
    ]
    assert money
    wrong = sorted({path for path in money if scopes.area_of(path.replace("{", "").replace("}", "")) != "payments"})
    assert wrong == []


def test_every_write_of_the_api_is_refused_to_a_read_only_token(admin):
    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://crm.example.net/h", event_types=[EventType.TICKET_CREATED]),
        acting_user=admin,
    )
    row, _plaintext = actions.do_create_integration_token(
        endpoint,
        name="ro",
        scopes=[Scope.READ_ONLY, Scope.SUBSCRIBERS, Scope.PAYMENTS, Scope.TICKETS],
        acting_user=admin,
    )
    writes = [(m, p) for m, p in _operations() if m not in ("GET", "HEAD", "OPTIONS")]
    assert len(writes) > 50
    for method, path in writes:
        request = RequestFactory().generic(method, path.replace("{", "").replace("}", ""))
        with pytest.raises(ApiError) as refused:
            scopes.check_scopes(request, row.token)
        assert refused.value.status == 403, (method, path)


# A plan changed back and forth in one day --------------------------------------------------------------------------


def test_a_plan_changed_there_and_back_and_there_again_is_three_events(
    admin, make_plan, make_subscriber, django_capture_on_commit_callbacks
):
    from abonent.billing import actions as billing

    actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://crm.example.net/h", event_types=[EventType.PLAN_CHANGED]),
        acting_user=admin,
    )
    home, fast = make_plan("home", "500.00", name="Домашний"), make_plan("fast", "900.00", name="Быстрый")
    subscriber = make_subscriber()
    t0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    with clock.travel_to(t0):
        billing.do_post_payment(subscriber, amount="5000.00", channel="cash", external_id="c-1", acting_user=admin)
        subscription = billing.do_activate_subscription(subscriber, plan=home, acting_user=admin)

    # When the operator upgrades, goes back (forced, at once), and upgrades again, the same day
    for minutes, plan in ((10, fast), (20, home), (30, fast)):
        with clock.travel_to(t0 + dt.timedelta(minutes=minutes)), django_capture_on_commit_callbacks(execute=True):
            subscription.refresh_from_db()
            billing.do_change_plan(subscription, plan=plan, force=True, acting_user=admin)

    # Then the CRM is told of all three: the last thing it hears is the plan the subscriber is on
    told = [e.data["to_plan"]["id"] for e in WebhookEvent.objects.filter(type=EventType.PLAN_CHANGED)]
    assert sorted(told) == sorted([fast.pk, home.pk, fast.pk])
    assert Delivery.objects.count() == 3
    subscription.refresh_from_db()
    assert subscription.plan == fast


# The page that shows a secret -----------------------------------------------------------------------------------


def test_the_pages_that_show_a_secret_or_a_token_are_not_stored(admin):
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(admin)
    data = {"name": "CRM", "url": "https://crm.example.net/hook", "event_types": ["payment.received"]}
    created = client.post(reverse("webhooks:create"), data)
    assert created.status_code == 201
    endpoint = Endpoint.objects.get()
    rotated = client.post(reverse("webhooks:rotate_secret", args=[endpoint.pk]))
    token = client.post(reverse("webhooks:token_create", args=[endpoint.pk]), {"name": "t", "scopes": ["subscribers"]})
    assert token.status_code == 201
    for response in (created, rotated, token):
        assert "no-store" in response.get("Cache-Control", ""), response.get("Cache-Control")


# The console: XSS, CSRF, torn filters ---------------------------------------------------------------------------

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_hostile_names_urls_and_answers_are_escaped_and_forms_want_csrf(admin, hook, httpserver):
    from django.test import Client
    from django.urls import reverse

    endpoint, _secret = hook(types=[EventType.SUBSCRIBER_CREATED], name=XSS, path="/crm/hook")
    Endpoint.objects.filter(pk=endpoint.pk).update(url=endpoint.url + '?a="><script>alert(2)</script>')
    httpserver.expect_request("/crm/hook", method="POST").respond_with_data(XSS, status=500)
    _queue_one()
    sending.send_due()
    delivery = Delivery.objects.get()
    client = Client()
    client.force_login(admin)
    for url in (
        reverse("webhooks:list"),
        reverse("webhooks:endpoint", args=[endpoint.pk]),
        reverse("webhooks:deliveries"),
        reverse("webhooks:delivery", args=[delivery.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html, url
    # And the forms that write refuse a request without the CSRF token
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(admin)
    for url in (
        reverse("webhooks:rotate_secret", args=[endpoint.pk]),
        reverse("webhooks:redeliver", args=[delivery.pk]),
        reverse("webhooks:token_create", args=[endpoint.pk]),
    ):
        assert csrf.post(url, {"name": "t", "scopes": ["subscribers"]}).status_code == 403, url
    assert not Attempt.objects.filter(number__gt=1).exists()


@pytest.mark.parametrize(
    "query",
    [
        "?endpoint=abc",
        "?endpoint=99999999999999999999999999",
        "?event=not-a-uuid",
        "?status=%00",
        "?cursor=garbage",
        "?cursor=%ff%fe",
        "?type=" + "x" * 5000,
    ],
)
def test_a_torn_filter_of_the_delivery_log_is_no_500(admin, query):
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(admin)
    response = client.get(reverse("webhooks:deliveries") + query)
    assert response.status_code in (200, 400, 422), response.status_code


# Two administrators creating the same integration at once ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_creates_of_one_name_at_once_give_a_field_error_not_a_500(admin):
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("a writer waiting on another's uncommitted row needs PostgreSQL")
    import threading
    import time

    inserted, errors = threading.Event(), []

    def first():
        # Another administrator's create, committed a moment after ours has checked the name is free
        try:
            with transaction.atomic():
                actions.do_create_endpoint(
                    actions.EndpointData(name="CRM", url="https://a.example/h", event_types=["payment.received"]),
                    acting_user=None,
                )
                inserted.set()
                time.sleep(0.5)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert inserted.wait(10)
    with pytest.raises(ValidationError) as refused:
        actions.do_create_endpoint(
            actions.EndpointData(name="CRM", url="https://b.example/h", event_types=["payment.received"]),
            acting_user=admin,
        )
    thread.join(10)
    assert errors == []
    assert [e.code for e in refused.value.error_dict["name"]] == ["unique"]
    assert list(Endpoint.objects.values_list("url", flat=True)) == ["https://a.example/h"]


# Redirects, a deactivated account (defences that hold) --------------------------------------------------------------


def test_a_redirect_is_not_followed_with_the_signed_body(hook, httpserver):
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook", method="POST").respond_with_response(
        Response("", status=307, headers={"Location": httpserver.url_for("/stolen")})
    )
    httpserver.expect_request("/stolen").respond_with_data("thanks")
    _queue_one()
    assert sending.send_due() == {"failed": 1}
    assert [request.path for request, _response in httpserver.log] == ["/crm/hook"]
    assert Delivery.objects.get().last_status_code == 307


def test_a_token_of_a_deactivated_service_account_opens_nothing(admin, make_subscriber):
    from conftest import JsonApi

    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://crm.example.net/h", event_types=[EventType.TICKET_CREATED]),
        acting_user=admin,
    )
    row, plaintext = actions.do_create_integration_token(
        endpoint, name="sync", scopes=[Scope.SUBSCRIBERS], acting_user=admin
    )
    make_subscriber()
    api = JsonApi(headers={"Authorization": f"Bearer {plaintext}"})
    assert api.get("/api/v1/subscribers").status_code == 200
    user = row.token.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert api.get("/api/v1/subscribers").status_code == 401


def test_the_backoff_of_an_absurd_attempt_is_the_cap():
    for attempt in (0, 1, 9, 1000, 32767):
        assert dt.timedelta(seconds=sending.BACKOFF_FIRST_S) <= sending.backoff(attempt)
        assert sending.backoff(attempt) <= dt.timedelta(seconds=sending.BACKOFF_MAX_S)
    assert sending.backoff(1000) == dt.timedelta(seconds=sending.BACKOFF_MAX_S)


def test_a_scope_taken_away_is_refused_at_the_next_request(admin, make_subscriber):
    from abonent.integrations.webhooks.models import IntegrationToken
    from conftest import JsonApi

    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://crm.example.net/h", event_types=[EventType.TICKET_CREATED]),
        acting_user=admin,
    )
    row, plaintext = actions.do_create_integration_token(
        endpoint, name="sync", scopes=[Scope.SUBSCRIBERS], acting_user=admin
    )
    make_subscriber()
    api = JsonApi(headers={"Authorization": f"Bearer {plaintext}"})
    assert api.get("/api/v1/subscribers").status_code == 200
    IntegrationToken.objects.filter(pk=row.pk).update(scopes=[Scope.TICKETS])
    refused = api.get("/api/v1/subscribers")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "scope_missing")
