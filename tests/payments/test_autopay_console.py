"""Autopay on the subscriber card: who sees it, who changes it, and what a clumsy or hostile post does."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from abonent.core import clock
from abonent.payments import actions
from abonent.payments.models import AutopayAttempt, AutopayPlan, NoticeKind, PaymentNotice, SavedMethod
from abonent.payments.testing import fake_gateway
from abonent.staff.permissions import Role

D = Decimal
HTMX = {"HX-Request": "true"}
CONSENT = "I agree to autopay of my account each month; I can turn it off in my cabinet."


@pytest.fixture
def fakepay():
    with fake_gateway() as fake:
        yield fake


@pytest.fixture
def client_of(make_staff):
    def make(role, **kwargs) -> Client:
        client = Client()
        client.force_login(make_staff(role, **kwargs))
        return client

    return make


def link(subscriber, method_id="pm-1", title="Bank card *4444"):
    return actions.do_link_method(
        subscriber,
        provider="fakepay",
        method_id=method_id,
        method_type="bank_card",
        title=title,
        consent_text=CONSENT,
        consented_at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
        consent_source="portal",
    )


def card(client, subscriber) -> str:
    response = client.get(reverse("subscribers:card", args=[subscriber.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_the_card_shows_methods_with_consent_autopay_and_its_tries(subscriber, client_of, admin, fakepay):
    method = link(subscriber)
    actions.do_enable_autopay(subscriber, method=method, debit_day=5, acting_user=admin)
    with clock.travel_to(dt.datetime(2026, 12, 5, 10)):
        actions.do_run_autopay()  # balance 0, no fees: nothing to debit, no try
    html = card(client_of(Role.OPERATOR), subscriber)
    assert 'id="panel-autopay"' in html and "Bank card *4444" in html and CONSENT in html
    assert "on day 5 of each month" in html and 'id="autopay-state"' in html
    assert reverse("payments:autopay", args=[subscriber.pk]) in html
    assert reverse("payments:unlink_method", args=[subscriber.pk, method.pk]) in html

    # A cashier reads it (billing view) but gets no forms.
    html = card(client_of(Role.CASHIER), subscriber)
    assert "Bank card *4444" in html
    assert reverse("payments:autopay", args=[subscriber.pk]) not in html
    assert reverse("payments:unlink_method", args=[subscriber.pk, method.pk]) not in html


@pytest.mark.django_db
def test_the_panel_queries_do_not_grow_with_the_history(subscriber, operator, fakepay, admin):
    from django.test import RequestFactory

    from abonent.payments.panels import autopay_context

    method = link(subscriber)
    plan = actions.do_enable_autopay(subscriber, method=method, debit_day=5, acting_user=admin)
    request = RequestFactory().get("/")
    request.user = operator

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            context = autopay_context(request, subscriber)
            [(a.method.title, a.payment) for a in context["attempts"]]
        return len(ctx.captured_queries)

    before = queries()
    for n in range(1, 6):
        AutopayAttempt.objects.create(
            plan=plan,
            subscriber=subscriber,
            method=method,
            due_on=dt.date(2026, n, 5),
            number=1,
            scheduled_for=dt.date(2026, n, 5),
            provider="fakepay",
            status="declined",
            created_at=clock.now(),
            key=f"autopay:t{n}",
        )
    assert queries() == before


@pytest.mark.django_db
def test_an_operator_turns_autopay_on_changes_it_and_turns_it_off(subscriber, operator_client, fakepay):
    method = link(subscriber)
    url = reverse("payments:autopay", args=[subscriber.pk])
    response = operator_client.post(
        url, {"method": method.pk, "mode": "day", "debit_day": "10", "amount_mode": "cover"}, headers=HTMX
    )
    assert response.status_code == 200 and "Autopay saved." in response.content.decode()
    plan = AutopayPlan.objects.get()
    assert (plan.enabled, plan.debit_day, plan.mode, plan.method) == (True, 10, "day", method)

    response = operator_client.post(
        url,
        {"method": method.pk, "mode": "day", "debit_day": "10", "amount_mode": "fixed", "fixed_amount": "700.50"},
        headers=HTMX,
    )
    assert response.status_code == 200, response.content.decode()
    plan.refresh_from_db()
    assert plan.amount_mode == "fixed" and plan.fixed_amount == D("700.50")

    response = operator_client.post(
        reverse("payments:autopay_off", args=[subscriber.pk]), {"reason": "asked by phone"}, headers=HTMX
    )
    assert response.status_code == 200 and 'id="autopay-state"' in response.content.decode()
    plan.refresh_from_db()
    assert not plan.enabled and plan.stop_reason == "asked by phone"
    assert PaymentNotice.objects.get().kind == NoticeKind.AUTOPAY_STOPPED


@pytest.mark.django_db
def test_a_bad_post_is_a_422_with_the_field_error_and_changes_nothing(
    subscriber, make_subscriber, operator_client, fakepay
):
    method = link(subscriber)
    url = reverse("payments:autopay", args=[subscriber.pk])
    response = operator_client.post(url, {"method": method.pk, "mode": "day", "amount_mode": "cover"}, headers=HTMX)
    assert response.status_code == 422 and "Give a day of the month from 1 to 31." in response.content.decode()
    response = operator_client.post(
        url, {"method": method.pk, "mode": "day", "debit_day": "5", "amount_mode": "fixed"}, headers=HTMX
    )
    assert response.status_code == 422
    # Someone else's saved method is not among the choices.
    theirs = link(make_subscriber(last_name="Петров"), method_id="pm-2")
    response = operator_client.post(
        url, {"method": theirs.pk, "mode": "day", "debit_day": "5", "amount_mode": "cover"}, headers=HTMX
    )
    assert response.status_code == 422
    assert AutopayPlan.objects.count() == 0


@pytest.mark.django_db
def test_unlinking_from_the_card_stops_autopay(subscriber, make_subscriber, operator_client, admin, fakepay):
    method = link(subscriber)
    actions.do_enable_autopay(subscriber, method=method, debit_day=5, acting_user=admin)
    other = make_subscriber(last_name="Петров")
    # A method id of another subscriber under this one's URL: not found, nothing unlinked.
    theirs = link(other, method_id="pm-2")
    response = operator_client.post(
        reverse("payments:unlink_method", args=[subscriber.pk, theirs.pk]), {"reason": "x"}, headers=HTMX
    )
    assert response.status_code == 404 and SavedMethod.objects.get(pk=theirs.pk).active

    response = operator_client.post(
        reverse("payments:unlink_method", args=[subscriber.pk, method.pk]), {"reason": "card lost"}, headers=HTMX
    )
    assert response.status_code == 200 and "Payment method unlinked." in response.content.decode()
    method.refresh_from_db()
    assert not method.active and method.unlink_reason == "card lost"
    assert not AutopayPlan.objects.get().enabled
    assert [n.kind for n in PaymentNotice.objects.all()] == [NoticeKind.METHOD_UNLINKED, NoticeKind.AUTOPAY_STOPPED]


@pytest.mark.django_db
def test_a_cashier_cannot_change_autopay_or_unlink(subscriber, client_of, admin, fakepay):
    method = link(subscriber)
    actions.do_enable_autopay(subscriber, method=method, debit_day=5, acting_user=admin)
    cashier = client_of(Role.CASHIER)
    for url, data in (
        (reverse("payments:autopay", args=[subscriber.pk]), {"method": method.pk, "mode": "day", "debit_day": "9"}),
        (reverse("payments:autopay_off", args=[subscriber.pk]), {}),
        (reverse("payments:unlink_method", args=[subscriber.pk, method.pk]), {}),
    ):
        assert cashier.post(url, data, headers=HTMX).status_code == 403
    plan = AutopayPlan.objects.get()
    assert plan.enabled and plan.debit_day == 5 and SavedMethod.objects.get().active
    assert PaymentNotice.objects.count() == 0


@pytest.mark.django_db
def test_an_operator_of_another_branch_does_not_find_the_subscriber(subscriber, make_staff, other_branch, fakepay):
    method = link(subscriber)
    client = Client()
    client.force_login(make_staff(Role.OPERATOR, branches=[other_branch]))
    response = client.post(
        reverse("payments:unlink_method", args=[subscriber.pk, method.pk]), {"reason": "x"}, headers=HTMX
    )
    assert response.status_code == 404 and SavedMethod.objects.get().active
