"""Turbo on the subscriber card: the subscriptions panel offers the plan's options, buys one from the balance,
shows the turbo on until it ends and ends it early."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from abonent.billing import actions
from abonent.billing.models import LedgerTransaction, TurboActivation, TurboStatus
from abonent.billing.testing import balance
from abonent.catalog import actions as catalog
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role

D = Decimal
NOV_1 = dt.date(2026, 11, 1)
# Noon in Moscow: a three-hour turbo runs until 3 p.m. local time.
NOON = timezone.make_aware(dt.datetime(2026, 11, 10, 12, 0))
HTMX = {"HX-Request": "true"}
NBSP = "\xa0"


def rub(amount: str) -> str:
    return f"{amount}{NBSP}₽"


@pytest.fixture
def turbos(admin):
    """Two options, 50 ₽ for 3 hours and 120 ₽ for 8."""
    return (
        catalog.do_create_turbo(
            code="turbo-500", name="Турбо 500", download_kbps=512_000, upload_kbps=256_000, hours=3, price="50.00",
            acting_user=admin,
        ),
        catalog.do_create_turbo(
            code="turbo-1g", name="Турбо 1G", download_kbps=1_000_000, upload_kbps=500_000, hours=8,
            price="120.00", acting_user=admin,
        ),
    )  # fmt: skip


@pytest.fixture
def subscription(make_plan, subscriber, admin, turbos, on):
    """On a 650 ₽ plan offering both turbos, 700 ₽ paid: 50.00 left, enough for the cheap turbo only."""
    plan = make_plan("home-100", "650.00", name="Домашний 100", download_kbps=100_000, upload_kbps=50_000,
                     turbos=list(turbos))  # fmt: skip
    with on(NOV_1):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        actions.do_post_payment(subscriber, amount="700.00", channel="cash", external_id="1")
    return subscription


@pytest.fixture
def client_of(make_staff):
    def make(role, **kwargs) -> Client:
        client = Client()
        client.force_login(make_staff(role, **kwargs))
        return client

    return make


def card(client, subscriber) -> str:
    response = client.get(f"/staff/subscribers/{subscriber.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def url(subscriber, rest: str) -> str:
    return f"/staff/subscribers/{subscriber.pk}/billing/{rest}"


def form_of(body: str, key: str) -> str:
    return body.split(f'data-form="{key}"')[1].split("</details>")[0]


def written() -> tuple[int, int, int]:
    return LedgerTransaction.objects.count(), TurboActivation.objects.count(), AuditEvent.objects.count()


def test_the_card_offers_the_plans_turbos_cheapest_first_with_speed_hours_and_price(
    operator_client, subscriber, subscription, turbos, on
):
    with on(NOON):
        body = card(operator_client, subscriber)
    form = form_of(body, f"turbo-{subscription.pk}")
    assert f'action="/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/turbo/"' in form
    cheap = f'<option value="{turbos[0].pk}">Турбо 500: 512/256 Mbit/s for 3 hours, {rub("50.00")}</option>'
    fast = f'<option value="{turbos[1].pk}">Турбо 1G: 1,000/500 Mbit/s for 8 hours, {rub("120.00")}</option>'
    assert cheap in form and fast in form and form.index(cheap) < form.index(fast)
    assert f'data-form="turbo-end-{subscription.pk}"' not in body
    assert "turbo-on" not in body


def test_no_turbo_form_where_the_plan_offers_none_or_for_a_cashier(
    client_of, operator_client, subscriber, subscription, make_plan, make_subscriber, admin, on
):
    plain = make_plan("plain", "300.00", name="Простой")
    other = make_subscriber(last_name="Петров", phone="+79031112233")
    with on(NOV_1):
        without = actions.do_activate_subscription(other, plan=plain, acting_user=admin)
    assert f'data-form="turbo-{without.pk}"' not in card(operator_client, other)
    assert f'data-form="change-{without.pk}"' in card(operator_client, other)
    assert f'data-form="turbo-{subscription.pk}"' not in card(client_of(Role.CASHIER), subscriber)


def test_turning_a_turbo_on_charges_the_balance_and_shows_it_until_it_ends(
    operator_client, subscriber, subscription, turbos, on
):
    with on(NOON):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{subscription.pk}/turbo/"),
            {"turbo": turbos[0].pk, "reason": "Game night"},
            headers=HTMX,
        )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card mb-3 panel-card" id="panel-subscriptions"')
    assert 'role="status">Turbo “Турбо 500” on until 11/10/2026 3 p.m.</div>' in body
    assert "Turbo Турбо 500, 512/256 Mbit/s until 11/10/2026 3 p.m." in body
    assert f'data-form="turbo-end-{subscription.pk}"' in body
    assert f'data-form="turbo-{subscription.pk}"' not in body
    # The balance and the ledger come along out of band, already charged.
    assert 'id="balance-amount">' + rub("0.00") in body
    ledger = body.split('id="panel-ledger"')[1]
    assert "Turbo “Турбо 500” until 11/10/2026 3 p.m." in ledger and f"{rub('-50.00')}</td>" in ledger

    assert balance(subscriber) == D("0.00")
    tx = LedgerTransaction.objects.get(kind="turbo")
    assert (tx.acting_user.username, tx.effective_date) == ("operator", dt.date(2026, 11, 10))
    bought = TurboActivation.objects.get()
    assert (bought.turbo, bought.status, bought.starts_at, bought.ends_at, bought.price) == (
        turbos[0],
        TurboStatus.ACTIVE,
        NOON,
        NOON + dt.timedelta(hours=3),
        D("50.00"),
    )
    assert bought.event.reason == "Game night"


def test_the_turbo_on_shows_to_a_cashier_without_the_forms(client_of, subscriber, subscription, turbos, admin, on):
    with on(NOON):
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        body = card(client_of(Role.CASHIER), subscriber)
    assert "Turbo Турбо 500, 512/256 Mbit/s until 11/10/2026 3 p.m." in body
    assert f'data-form="turbo-end-{subscription.pk}"' not in body


def test_the_turbo_on_is_written_the_russian_way(operator_client, subscriber, subscription, turbos, admin, on):
    catalog.do_update_turbo(turbos[0], acting_user=admin, download_kbps=102_400)
    turbos[0].refresh_from_db()
    with on(NOON):
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        response = operator_client.get(f"/staff/subscribers/{subscriber.pk}/", headers={"Accept-Language": "ru"})
    assert "102,4/256" in response.content.decode() and "10.11.2026 15:00" in response.content.decode()


def test_a_turbo_the_balance_does_not_cover_is_422_and_nothing_is_charged(
    operator_client, subscriber, subscription, turbos, on
):
    before = written()
    with on(NOON):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{subscription.pk}/turbo/"), {"turbo": turbos[1].pk}, headers=HTMX
        )
    body = response.content.decode()
    assert response.status_code == 422
    assert f"The balance does not cover the turbo&#x27;s price of {rub('120.00')}." in body
    assert f'<details class="billing-form" data-form="turbo-{subscription.pk}" open>' in body
    assert "hx-swap-oob" not in body
    assert written() == before
    assert balance(subscriber) == D("50.00")


def test_an_option_the_plan_does_not_offer_is_422_on_the_field(operator_client, subscriber, subscription, admin, on):
    foreign = catalog.do_create_turbo(
        code="other", name="Чужой", download_kbps=1000, upload_kbps=1000, hours=1, price="1.00", acting_user=admin
    )
    before = written()
    with on(NOON):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{subscription.pk}/turbo/"), {"turbo": foreign.pk}, headers=HTMX
        )
    assert response.status_code == 422
    form = form_of(response.content.decode(), f"turbo-{subscription.pk}")
    assert '<div class="invalid-feedback d-block">The plan does not offer this turbo.</div>' in form
    assert written() == before


def test_a_second_turbo_while_one_is_on_is_422_with_the_reason(
    operator_client, subscriber, subscription, turbos, admin, on
):
    actions.do_post_payment(subscriber, amount="100.00", channel="cash", external_id="2")
    with on(NOON):
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
    before = written()
    with on(NOON + dt.timedelta(hours=1)):
        # Posted from a card drawn before the first one was bought.
        response = operator_client.post(
            url(subscriber, f"subscriptions/{subscription.pk}/turbo/"), {"turbo": turbos[0].pk}, headers=HTMX
        )
    assert response.status_code == 422
    assert "A turbo is already on (until 11/10/2026 3 p.m.)" in response.content.decode()
    assert written() == before


def test_end_now_gives_the_plans_speed_back_without_a_refund(
    operator_client, subscriber, subscription, turbos, admin, on
):
    with on(NOON):
        bought = actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
    with on(NOON + dt.timedelta(hours=1)):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{subscription.pk}/turbo/end/"), {"reason": "Wrong account"}, headers=HTMX
        )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Turbo “Турбо 500” ended." in body
    assert "turbo-on" not in body
    assert f'data-form="turbo-{subscription.pk}"' in body  # another can be bought
    bought.refresh_from_db()
    assert (bought.status, bought.ended_at) == (TurboStatus.ENDED_EARLY, NOON + dt.timedelta(hours=1))
    assert balance(subscriber) == D("0.00")
    ended = AuditEvent.objects.get(action="billing.turbo_ended")
    assert (ended.actor.username, ended.reason) == ("operator", "Wrong account")


def test_end_now_when_the_turbo_has_run_out_is_422_and_says_so(
    operator_client, subscriber, subscription, turbos, admin, on
):
    with on(NOON):
        bought = actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
    with on(bought.ends_at + dt.timedelta(minutes=1)):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{subscription.pk}/turbo/end/"), {}, headers=HTMX
        )
    body = response.content.decode()
    assert response.status_code == 422
    assert f'<details class="billing-form" data-form="turbo-end-{subscription.pk}" open>' in body
    assert "No turbo is on." in body
    bought.refresh_from_db()
    assert (bought.status, bought.ended_at) == (TurboStatus.ACTIVE, None)  # left for the worker to finish


def test_a_cashier_cannot_turn_a_turbo_on_or_end_one(client_of, subscriber, subscription, turbos, admin, on):
    cashier = client_of(Role.CASHIER)
    before = written()
    with on(NOON):
        bought = cashier.post(url(subscriber, f"subscriptions/{subscription.pk}/turbo/"), {"turbo": turbos[0].pk})
        assert bought.status_code == 403 and written() == before
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        ended = cashier.post(url(subscriber, f"subscriptions/{subscription.pk}/turbo/end/"), {})
    assert ended.status_code == 403
    assert TurboActivation.objects.get().status == TurboStatus.ACTIVE


def test_without_htmx_the_turbo_returns_to_the_card_with_a_message(
    operator_client, subscriber, subscription, turbos, on
):
    with on(NOON):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{subscription.pk}/turbo/"), {"turbo": turbos[0].pk}, follow=True
        )
    assert response.redirect_chain == [(f"/staff/subscribers/{subscriber.pk}/#panel-subscriptions", 302)]
    assert "Turbo “Турбо 500” on until 11/10/2026 3 p.m." in response.content.decode()


def test_the_history_names_the_turbo(operator_client, subscriber, subscription, turbos, admin, on):
    with on(NOON):
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
    with on(NOON + dt.timedelta(hours=1)):
        actions.do_end_turbo(subscription, acting_user=admin)
    history = card(operator_client, subscriber).split('id="panel-history"')[1]
    assert "Turbo turned on" in history and "Turbo ended early" in history
    assert "turbo" in history and "Турбо 500" in history


def test_turbos_on_cost_one_query_for_every_subscription(
    operator_client, subscriber, subscription, turbos, admin, make_plan, on
):
    with on(NOON):
        with CaptureQueriesContext(connection) as none_on:
            card(operator_client, subscriber)
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        with CaptureQueriesContext(connection) as one_on:
            card(operator_client, subscriber)
        tv = catalog.do_create_service(code="iptv", name="ТВ", kind="iptv", acting_user=admin)
        second = make_plan("tv", "0.00", name="ТВ", service=tv, turbos=[turbos[0]])
        actions.do_activate_subscription(subscriber, plan=second, acting_user=admin)
        actions.do_post_payment(subscriber, amount="50.00", channel="cash", external_id="2")
        actions.do_activate_turbo(subscriber.subscriptions.get(plan=second), turbo=turbos[0], acting_user=admin)
        with CaptureQueriesContext(connection) as two_on:
            body = card(operator_client, subscriber)
    assert body.count('class="text-success-emphasis mt-1 turbo-on"') == 2
    turbo_queries = [q for q in two_on.captured_queries if '"billing_turboactivation"."id"' in q["sql"]]
    assert len(turbo_queries) == 1
    # The turbo on replaces the buy form (one list of options fewer) and adds the query for the turbos on.
    assert len(one_on) == len(none_on)
