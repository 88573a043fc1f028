"""Wi-Fi cards: the hotspot page's code opens an anonymous prepaid account with a hotspot login, once."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from abonent.billing import ledger
from abonent.billing.models import LedgerTransaction, Subscription, TransactionKind
from abonent.network.models import Login, LoginKind
from abonent.subscribers.models import Subscriber
from abonent.vouchers import actions, wifi
from abonent.vouchers.testing import balance, card, code_of


def test_a_wifi_card_opens_an_account_with_a_hotspot_login_and_its_money(wifi_series):
    code = code_of(card(wifi_series, 1))
    access = wifi.activate_wifi(code=code, client_ip="10.5.0.17")
    assert access.created
    assert (access.username, access.password) == (f"wifi-{card(wifi_series, 1).serial}", code)
    login = Login.objects.get(username=access.username)
    assert login.kind == LoginKind.HOTSPOT
    assert login.password == code
    subscriber = login.subscriber
    assert balance(subscriber) == Decimal("100.00")
    assert Subscription.objects.get(subscriber=subscriber).plan == wifi_series.plan
    assert card(wifi_series, 1).activated_by == subscriber
    assert ledger.verify() == []


def test_the_same_code_again_shows_the_same_login_and_credits_nothing_more(wifi_series):
    code = code_of(card(wifi_series, 2))
    first = wifi.activate_wifi(code=code, client_ip="10.5.0.17")
    again = wifi.activate_wifi(code=code.replace("-", ""), client_ip="10.5.0.18")
    assert not again.created and again.username == first.username
    assert Subscriber.objects.filter(vouchers__isnull=False).count() == 1
    assert LedgerTransaction.objects.filter(kind=TransactionKind.VOUCHER_ACTIVATION).count() == 1


def test_a_topup_card_is_refused_on_the_wifi_page_and_a_wifi_card_in_the_portal(wifi_series, series, make_subscriber):
    with pytest.raises(ValidationError) as exc:
        wifi.activate_wifi(code=code_of(card(series, 1)), client_ip=None)
    assert exc.value.error_dict["code"][0].code == "card_not_wifi"
    subscriber = make_subscriber()
    with pytest.raises(ValidationError) as exc:
        actions.activate(subscriber, code=code_of(card(wifi_series, 3)), acting_user=None, client_ip=None)
    assert exc.value.error_dict["code"][0].code == "card_wifi"
    assert not Login.objects.exists()
    assert balance(subscriber) == Decimal("0.00")


@pytest.mark.django_db(transaction=True)
def test_one_wifi_card_entered_on_two_devices_at_once_opens_one_account(postgres_only, wifi_series):
    code = code_of(card(wifi_series, 4))
    barrier = threading.Barrier(3)
    created = []

    def enter():
        try:
            barrier.wait()
            created.append(wifi.activate_wifi(code=code, client_ip=None).created)
        finally:
            connection.close()

    threads = [threading.Thread(target=enter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(created) == [False, False, True]
    assert Login.objects.filter(kind=LoginKind.HOTSPOT).count() == 1
    assert balance(Login.objects.get().subscriber) == Decimal("100.00")


def test_staff_cannot_create_a_hotspot_login_in_the_wifi_cards_namespace(wifi_series, make_subscriber, admin):
    from abonent.network.actions import do_create_login

    with pytest.raises(ValidationError) as exc:
        do_create_login(
            make_subscriber(), acting_user=admin, kind=LoginKind.HOTSPOT, username="WIFI-0000100001", password="p-1234"
        )
    assert exc.value.error_dict["username"][0].code == "username_reserved"


def test_a_wifi_series_on_a_plan_without_a_price_yet_is_refused(admin, make_plan):
    plan = make_plan(
        "wifi-later", "0.00", charge_mode="time", unit_price=Decimal("1.00"), valid_from=dt.date(2027, 1, 1)
    )
    with pytest.raises(ValidationError) as exc:
        actions.do_create_series(
            name="Рано", kind="wifi", amount="100.00", count=1, expires_on=dt.date(2027, 6, 30), plan=plan,
            acting_user=admin,
        )  # fmt: skip
    assert exc.value.error_dict["plan"][0].code == "plan_without_price"
