"""The integrations pages: administrators only, bad URLs refused on the field, the secret shown once and never
audited, filters of the delivery log."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from abonent.core import secrets
from abonent.core.models import AuditEvent
from abonent.integrations.webhooks import actions, events
from abonent.integrations.webhooks.models import Delivery, DeliveryStatus, Endpoint, EventType, IntegrationToken
from abonent.staff.permissions import Role


@pytest.fixture
def admin_client(admin):
    client = Client()
    client.force_login(admin)
    return client


def _create(client, **overrides):
    data = {
        "name": "CRM",
        "url": "https://crm.example.net/hook",
        "event_types": ["payment.received"],
        "is_active": "on",
    }
    return client.post(reverse("webhooks:create"), {**data, **overrides})


def test_an_operator_sees_neither_the_menu_nor_the_pages(operator_client):
    assert operator_client.get(reverse("webhooks:list")).status_code == 403
    assert _create(operator_client).status_code == 403
    assert Endpoint.objects.count() == 0
    assert reverse("webhooks:list") not in operator_client.get(reverse("dashboard:home")).content.decode()


def test_the_admin_finds_integrations_in_the_administration_menu(admin_client):
    assert reverse("webhooks:list") in admin_client.get(reverse("dashboard:home")).content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://crm.example.net/hook",
        "javascript:alert(1)",
        "https://",
        "crm.example.net/hook",
        "https://user:pass@crm.example.net/hook",
        "https://crm.example.net/hook#frag",
        "https://crm.example.net:99999/hook",
        "https://crm example.net/hook",
        "http://0.0.0.0/hook",
        "https://crm.example.net/" + "a" * 600,
    ],
)
def test_a_bad_url_is_a_field_error_and_nothing_is_made(admin_client, url):
    response = _create(admin_client, url=url)
    assert response.status_code == 422
    assert response.context["form"].errors["url"]
    assert Endpoint.objects.count() == 0
    with pytest.raises(Exception) as refused:
        actions.validate_url(url)
    assert refused.value.code == "invalid_url"


def test_no_event_type_is_a_field_error(admin_client):
    response = _create(admin_client, event_types=[])
    assert response.status_code == 422
    assert "event_types" in response.context["form"].errors


def test_the_secret_is_shown_once_stored_encrypted_and_never_audited(admin_client, admin):
    response = _create(admin_client)
    assert response.status_code == 201
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret in response.content.decode()
    endpoint = Endpoint.objects.get()
    assert secret not in endpoint.secret_encrypted
    assert secrets.decrypt(endpoint.secret_encrypted) == secret
    page = admin_client.get(reverse("webhooks:endpoint", args=[endpoint.pk]))
    assert secret not in page.content.decode()
    rotated = admin_client.post(reverse("webhooks:rotate_secret", args=[endpoint.pk]))
    new_secret = rotated.context["secret"]
    assert new_secret != secret and new_secret in rotated.content.decode()
    audit = list(
        AuditEvent.objects.filter(action__startswith="webhooks.")
        .order_by("pk")
        .values_list("action", "before", "after")
    )
    assert [a for a, _b, _c in audit] == ["webhooks.endpoint_created", "webhooks.secret_rotated"]
    assert secret not in str(audit) and new_secret not in str(audit)


def test_an_edit_is_audited_with_what_changed(admin_client, admin):
    _create(admin_client)
    endpoint = Endpoint.objects.get()
    response = admin_client.post(
        reverse("webhooks:endpoint", args=[endpoint.pk]),
        {"name": "CRM", "url": "https://crm2.example.net/hook", "event_types": ["payment.received", "ticket.created"]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.is_active) == ("https://crm2.example.net/hook", False)
    changed = AuditEvent.objects.get(action="webhooks.endpoint_changed")
    assert changed.before == {
        "url": "https://crm.example.net/hook",
        "event_types": ["payment.received"],
        "is_active": True,
    }
    assert changed.after["url"] == "https://crm2.example.net/hook"
    assert changed.actor == admin


def test_a_token_is_made_on_the_page_and_shown_once(admin_client):
    _create(admin_client)
    endpoint = Endpoint.objects.get()
    response = admin_client.post(
        reverse("webhooks:token_create", args=[endpoint.pk]), {"name": "sync", "scopes": ["read_only", "payments"]}
    )
    assert response.status_code == 201
    token = response.context["token"]
    assert token.startswith("abn_") and token in response.content.decode()
    row = IntegrationToken.objects.get()
    assert row.scopes == ["payments", "read_only"]
    assert row.token.user.is_service_account
    assert token not in admin_client.get(reverse("webhooks:endpoint", args=[endpoint.pk])).content.decode()
    refused = admin_client.post(reverse("webhooks:token_create", args=[endpoint.pk]), {"name": "x", "scopes": []})
    assert refused.status_code == 422
    assert refused.context["token_form"].errors["scopes"]
    assert IntegrationToken.objects.count() == 1
    revoked = admin_client.post(reverse("webhooks:token_revoke", args=[row.pk]))
    assert revoked.status_code == 302
    row.token.refresh_from_db()
    assert row.token.revoked_at is not None


def test_the_log_filters(admin_client, admin):
    crm, _ = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://a.example/h", event_types=[EventType.PAYMENT_RECEIVED]),
        acting_user=admin,
    )
    events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:1", {"payment": {"id": 1}})])
    events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:2", {"payment": {"id": 2}})])
    Delivery.objects.filter(event__key="payment.received:2").update(status=DeliveryStatus.FAILED)
    url = reverse("webhooks:deliveries")
    assert len(admin_client.get(url).context["page"].rows) == 2
    failed = admin_client.get(url, {"status": "failed", "endpoint": crm.pk}).context["page"].rows
    assert [d.event.key for d in failed] == ["payment.received:2"]
    one = Delivery.objects.get(event__key="payment.received:1")
    by_id = admin_client.get(url, {"event": str(one.event_id)}).context["page"].rows
    assert [d.pk for d in by_id] == [one.pk]
    assert admin_client.get(url, {"event": "not-a-uuid"}).status_code == 422
    assert admin_client.get(reverse("webhooks:delivery", args=[one.pk])).status_code == 200
    assert admin_client.get(reverse("webhooks:list")).status_code == 200


def test_a_branch_limited_admin_cannot_manage_integrations(make_staff, branch, admin):
    limited = make_staff(Role.ADMIN, username="branch-admin", branches=[branch])
    client = Client()
    client.force_login(limited)
    assert client.get(reverse("webhooks:list")).status_code == 403
    assert _create(client).status_code == 403
    assert Endpoint.objects.count() == 0
    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://a.example/h", event_types=[EventType.PAYMENT_RECEIVED]),
        acting_user=admin,
    )
    with pytest.raises(PermissionDenied):
        actions.do_create_integration_token(endpoint, name="t", scopes=["subscribers"], acting_user=limited)
    assert IntegrationToken.objects.count() == 0


def test_the_log_page_reads_in_a_fixed_number_of_queries(admin_client, admin, django_assert_max_num_queries):
    for n in range(3):
        actions.do_create_endpoint(
            actions.EndpointData(name=f"CRM {n}", url="https://a.example/h", event_types=[EventType.PAYMENT_RECEIVED]),
            acting_user=admin,
        )
    events.enqueue(EventType.PAYMENT_RECEIVED, [(f"payment.received:{n}", {"payment": {"id": n}}) for n in range(20)])
    assert Delivery.objects.count() == 60
    admin_client.get(reverse("webhooks:deliveries"))  # warm the session and the user
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("webhooks:deliveries"))
    assert len(response.context["page"].rows) == 50
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("webhooks:list")).status_code == 200


def test_the_pages_render_in_russian(admin_client, admin):
    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://a.example/h", event_types=[EventType.PAYMENT_RECEIVED]),
        acting_user=admin,
    )
    events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:1", {"payment": {"id": 1}})])
    delivery = Delivery.objects.get()
    admin_client.cookies["django_language"] = "ru"
    for url in (
        reverse("webhooks:list"),
        reverse("webhooks:endpoint", args=[endpoint.pk]),
        reverse("webhooks:deliveries"),
        reverse("webhooks:delivery", args=[delivery.pk]),
        reverse("webhooks:create"),
    ):
        response = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="ru")
        assert response.status_code == 200, url
        assert 'lang="ru"' in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "x" * 10_000}, "name"),
        ({"name": "   "}, "name"),
        ({"event_types": ["subscriber.created", "root.everything"]}, "event_types"),
        ({"url": "https://a.example/\x7f"}, "url"),
        ({"url": "https://a.example/\x00"}, None),  # refused before any view (core middleware: NUL in input)
    ],
)
def test_absurd_input_is_a_field_error_not_a_500(admin_client, overrides, field):
    response = _create(admin_client, **overrides)
    assert response.status_code == 422
    if field is not None:
        assert field in response.context["form"].errors
    assert Endpoint.objects.count() == 0


def test_a_duplicate_name_is_a_field_error(admin_client):
    assert _create(admin_client).status_code == 201
    again = _create(admin_client)
    assert again.status_code == 422
    assert [e.code for e in again.context["form"].errors.as_data()["name"]] == ["unique"]
    assert Endpoint.objects.count() == 1


def test_junk_scopes_and_dates_on_the_token_form(admin_client):
    _create(admin_client)
    endpoint = Endpoint.objects.get()
    url = reverse("webhooks:token_create", args=[endpoint.pk])
    for data in (
        {"name": "t", "scopes": ["root"]},
        {"name": "t", "scopes": ["subscribers"], "expires_on": "2000-01-01"},
        {"name": "t", "scopes": ["subscribers"], "expires_on": "not a date"},
        {"name": "t" * 1000, "scopes": ["subscribers"]},
    ):
        assert admin_client.post(url, data).status_code == 422, data
    assert IntegrationToken.objects.count() == 0
