"""The cash desk: cash taken once per form, the receipt, the cashier's day, its close and the cash report."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.models import CashDay, Payment, PaymentStatus
from abonent.staff.permissions import Role

D = Decimal
TODAY = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def take_token(client, subscriber) -> str:
    page = client.get(reverse("payments:cashdesk"), {"account": subscriber.account_number})
    assert page.status_code == 200
    match = re.search(r'name="token" value="([0-9a-f]{32})"', page.content.decode())
    return match.group(1)


def take(client, subscriber, amount, token, **extra):
    return client.post(reverse("payments:take", args=[subscriber.pk]), {"amount": amount, "token": token, **extra})


@pytest.fixture(autouse=True)
def _today():
    with clock.travel_to(TODAY):
        yield


@pytest.mark.django_db
def test_taking_a_payment_twice_with_the_same_token_credits_once(cashier, subscriber):
    client = client_for(cashier)
    token = take_token(client, subscriber)
    first = take(client, subscriber, "650,00", token)
    again = take(client, subscriber, "650,00", token)
    payment = Payment.objects.get()
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == reverse("payments:receipt", args=[payment.pk])
    assert (payment.channel, payment.external_id, payment.method) == ("cash", token, "cash")
    assert payment.taken_by == cashier and payment.status == PaymentStatus.CREDITED
    assert get_balance(subscriber).balance == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_used_token_is_not_reused_for_another_amount_or_subscriber(cashier, subscriber, make_subscriber):
    other = make_subscriber(last_name="Петров")
    client = client_for(cashier)
    token = take_token(client, subscriber)
    assert take(client, subscriber, "100.00", token).status_code == 302
    changed = take(client, subscriber, "1000.00", token)
    foreign = take(client, other, "100.00", token)
    assert changed.status_code == foreign.status_code == 422
    assert "already used for another payment" in changed.content.decode()
    assert get_balance(subscriber).balance == D("100.00") and get_balance(other).balance == 0
    assert Payment.objects.count() == 1 and ledger.verify() == []


@pytest.mark.django_db
def test_a_forged_or_missing_token_or_a_bad_amount_takes_nothing(cashier, subscriber):
    client = client_for(cashier)
    for token, amount in [("", "100"), ("x" * 32, "100"), ("../../etc", "100"), ("a" * 32, "-5"), ("a" * 32, "1e3")]:
        assert take(client, subscriber, amount, token).status_code == 422
    assert Payment.objects.count() == 0 and get_balance(subscriber).balance == 0


@pytest.mark.django_db
def test_the_cash_desk_shows_whose_account_and_the_amount_that_covers_next_month(cashier, subscriber, make_plan, admin):
    plan = make_plan("home", "650.00")
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    balance = get_balance(subscriber).balance
    page = client_for(cashier).get(reverse("payments:cashdesk"), {"account": subscriber.account_number})
    html = page.content.decode()
    assert page.status_code == 200
    assert subscriber.display_name in html and "Ленина" in html
    suggested = D("650.00") - balance
    assert re.search(r'id="cashdesk-suggested">([^<]+)<', html).group(1).replace("\xa0", " ") == (
        f"{suggested:,.2f} ₽".replace(",", ",")
    )
    assert f'value="{suggested:.2f}"' in html  # the amount field starts with it


@pytest.mark.django_db
def test_an_unknown_or_foreign_account_shows_nothing(make_staff, subscriber, other_branch):
    foreign_cashier = make_staff(Role.CASHIER, branches=[other_branch])
    client = client_for(foreign_cashier)
    for account in [subscriber.account_number, "000000000"]:
        page = client.get(reverse("payments:cashdesk"), {"account": account})
        assert page.status_code == 404 and subscriber.display_name not in page.content.decode()
    assert take(client, subscriber, "100.00", "a" * 32).status_code == 404
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_the_receipt_shows_the_amount_in_russian_words(cashier, subscriber, settings):
    settings.ABONENT_COMPANY_NAME = "ООО «Связь»"
    client = client_for(cashier)
    take(client, subscriber, "1234.50", take_token(client, subscriber))
    payment = Payment.objects.get()
    client.cookies["django_language"] = "ru"
    html = client.get(reverse("payments:receipt", args=[payment.pk]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Одна тысяча двести тридцать четыре рубля, пятьдесят копеек" in html
    assert "ООО «Связь»" in html and subscriber.account_number in html and subscriber.display_name in html
    assert f"№ {payment.pk}" in html or f"No. {payment.pk}" in html
    # 12:00 UTC is 15:00 in Moscow, the installation's zone.
    assert re.search(r'id="receipt-time">10\.03\.2026 15:00<', html)
    assert "Test cashier" in html


@pytest.mark.django_db
def test_the_cash_report_sums_payments_cancellations_and_cash_refunds(cashier, subscriber, admin):
    for amount in ["500.00", "300.00", "200.00"]:
        actions.do_take_cash_payment(subscriber, amount=amount, token=actions.new_form_token(), acting_user=cashier)
    mistaken = Payment.objects.get(amount=D("200.00"))
    actions.do_cancel_payment(mistaken, reason="wrong amount", acting_user=cashier)
    # The administrator's own desk: a payment, and a cash refund paid out of it.
    admin_payment = actions.do_take_cash_payment(
        subscriber, amount="150.00", token=actions.new_form_token(), acting_user=admin
    ).payment
    actions.do_refund_payment(admin_payment, amount="100.00", reason="asked back", acting_user=admin, key="r1")

    html = client_for(cashier).get(reverse("payments:cash_report", args=[cashier.pk, "2026-03-10"])).content.decode()
    assert re.search(r'id="report-payments">1\xa0000\.00\xa0₽|id="report-payments">1,000\.00\xa0₽', html)
    assert "− 200.00\xa0₽" in html and "− 0.00\xa0₽" in html
    assert 'id="report-net">800.00\xa0₽' in html
    assert html.count('class="cancelled"') == 1 and "Senior cashier" in html

    day = actions.do_close_cash_day(admin, day=clock.today(), acting_user=admin)
    assert (day.payments_total, day.refunds_total, day.net_total) == (D("150.00"), D("100.00"), D("50.00"))
    day = actions.do_close_cash_day(cashier, day=clock.today(), acting_user=cashier)
    assert (day.payments_count, day.payments_total, day.cancelled_count, day.cancelled_total) == (
        3,
        D("1000.00"),
        1,
        D("200.00"),
    )
    assert day.net_total == D("800.00") and day.totals_by_method == {"cash": "800.00"}
    assert get_balance(subscriber).balance == D("850.00") and ledger.verify() == []


@pytest.mark.django_db
def test_a_closed_day_blocks_the_cashiers_cancel_and_new_payments_until_the_next_day(cashier, subscriber, admin):
    taken = actions.do_take_cash_payment(
        subscriber, amount="400.00", token=actions.new_form_token(), acting_user=cashier
    )
    assert actions.can_cancel(cashier, taken.payment)
    client = client_for(cashier)
    page = client.get(reverse("payments:my_day"))
    token = re.search(r'name="token" value="([0-9a-f]{32})"', page.content.decode()).group(1)
    assert client.post(reverse("payments:close_day"), {"token": token}).status_code == 302
    assert client.post(reverse("payments:close_day"), {"token": token}).status_code == 302  # a double click: once
    day = CashDay.objects.get(cashier=cashier, date=dt.date(2026, 3, 10))
    assert day.is_closed and day.net_total == D("400.00")

    payment = Payment.objects.get(pk=taken.payment.pk)
    assert not actions.can_cancel(cashier, payment)
    with pytest.raises(ValidationError) as refused:
        actions.do_cancel_payment(payment, reason="mistake", acting_user=cashier)
    assert refused.value.code == "cash_day_closed"
    card = client.get(reverse("payments:card", args=[payment.pk])).content.decode()
    assert 'id="form-cancel"' not in card
    cancel = client.post(reverse("payments:cancel", args=[payment.pk]), {"reason": "x", "token": "b" * 32})
    assert cancel.status_code == 422
    assert get_balance(subscriber).balance == D("400.00")

    with pytest.raises(ValidationError) as closed:
        actions.do_take_cash_payment(subscriber, amount="10.00", token=actions.new_form_token(), acting_user=cashier)
    assert closed.value.code == "cash_day_closed"
    assert Payment.objects.count() == 1 and get_balance(subscriber).balance == D("400.00")

    with clock.travel_to(TODAY + dt.timedelta(days=1)):
        actions.do_take_cash_payment(subscriber, amount="10.00", token=actions.new_form_token(), acting_user=cashier)
        assert not CashDay.objects.get(cashier=cashier, date=dt.date(2026, 3, 11)).is_closed
    # The administrator may still cancel a closed day's payment (the report marks it).
    actions.do_cancel_payment(payment, reason="duplicate", acting_user=admin)
    assert get_balance(subscriber).balance == D("10.00") and ledger.verify() == []


@pytest.mark.django_db
def test_a_cashier_closes_only_their_own_day_and_sees_only_their_reports(cashier, make_staff, admin):
    other = make_staff(Role.CASHIER, username="cashier2")
    with pytest.raises(ValidationError):
        actions.do_close_cash_day(other, day=clock.today(), acting_user=cashier)
    with pytest.raises(ValidationError):
        actions.do_close_cash_day(cashier, day=clock.today() + dt.timedelta(days=1), acting_user=cashier)
    actions.do_close_cash_day(other, day=clock.today(), acting_user=other)
    report = reverse("payments:cash_report", args=[other.pk, "2026-03-10"])
    assert client_for(cashier).get(report).status_code == 404
    assert client_for(other).get(report).status_code == 200
    assert client_for(admin).get(report).status_code == 200
    assert client_for(admin).get(reverse("payments:cash_report", args=[other.pk, "2026-13-45"])).status_code == 404
    listing = client_for(admin).get(reverse("payments:cash_reports")).content.decode()
    assert "Test cashier" in listing
    assert "cashier2" not in client_for(cashier).get(reverse("payments:cash_reports")).content.decode()


@pytest.mark.django_db
def test_who_may_use_the_cash_desk(cashier, operator, admin, make_staff, subscriber):
    engineer = make_staff(Role.ENGINEER)
    support = make_staff(Role.SUPPORT)
    desk = reverse("payments:cashdesk")
    assert client_for(cashier).get(desk).status_code == 200
    assert client_for(admin).get(desk).status_code == 200
    for user in (operator, engineer, support):
        assert client_for(user).get(desk).status_code == 403
        assert take(client_for(user), subscriber, "100.00", "c" * 32).status_code == 403
        assert client_for(user).post(reverse("payments:close_day"), {"token": "d" * 32}).status_code == 403
    assert Client().get(desk).status_code == 302  # to the login page
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_the_subscriber_card_has_the_payments_panel_with_the_take_form_for_a_cashier(cashier, operator, subscriber):
    actions.do_take_cash_payment(subscriber, amount="321.00", token=actions.new_form_token(), acting_user=cashier)
    card = reverse("subscribers:card", args=[subscriber.pk])
    html = client_for(cashier).get(card).content.decode()
    assert 'id="panel-payments"' in html and "321.00" in html
    assert reverse("payments:take", args=[subscriber.pk]) in html
    operator_html = client_for(operator).get(card).content.decode()
    assert (
        'id="panel-payments"' in operator_html and reverse("payments:take", args=[subscriber.pk]) not in operator_html
    )


@pytest.mark.django_db(transaction=True)
def test_a_double_click_at_the_same_moment_credits_once(cashier, subscriber, together, django_db_setup):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: there is no race to test")
    token = actions.new_form_token()

    def click():
        with clock.travel_to(TODAY):
            return actions.do_take_cash_payment(subscriber, amount="500.00", token=token, acting_user=cashier)

    def close():
        with clock.travel_to(TODAY):
            return actions.do_close_cash_day(cashier, day=dt.date(2026, 3, 10), acting_user=cashier)

    results = together(click, click, click)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sorted(r.created for r in results) == [False, False, True]
    assert Payment.objects.count() == 1 and get_balance(subscriber).balance == D("500.00")
    # A close racing a payment counts it or refuses it: never a payment in a closed day that its totals miss.
    other = actions.new_form_token()

    def late_click():
        with clock.travel_to(TODAY):
            return actions.do_take_cash_payment(subscriber, amount="70.00", token=other, acting_user=cashier)

    together(late_click, close)
    day = CashDay.objects.get(cashier=cashier, date=dt.date(2026, 3, 10))
    taken = Payment.objects.filter(taken_by=cashier).count()
    assert day.payments_count == taken
    assert day.net_total == get_balance(subscriber).balance
    assert ledger.verify() == []


@pytest.mark.django_db
def test_old_form_tokens_are_forgotten_and_the_payment_stays_once(cashier, subscriber):
    from abonent.payments.actions.cashdesk import do_forget_form_submissions
    from abonent.payments.models import FormSubmission

    token = actions.new_form_token()
    payment = actions.do_take_cash_payment(subscriber, amount="60.00", token=token, acting_user=cashier).payment
    client = client_for(cashier)
    cancel_token = actions.new_form_token()
    client.post(reverse("payments:cancel", args=[payment.pk]), {"reason": "wrong", "token": cancel_token})
    assert FormSubmission.objects.count() == 1
    with clock.travel_to(TODAY + dt.timedelta(days=31)):
        assert do_forget_form_submissions(older_than=dt.timedelta(days=30)) == 1
    # The same cancel form again: the payment is cancelled already, nothing is reversed twice.
    again = client.post(reverse("payments:cancel", args=[payment.pk]), {"reason": "wrong", "token": cancel_token})
    assert again.status_code == 422
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CANCELLED
    assert get_balance(subscriber).balance == 0 and ledger.verify() == []


@pytest.mark.django_db
def test_money_typed_at_the_desk_or_through_the_api_is_bounded_as_adjustments_are(subscriber, cashier, settings):
    # A typo of three extra zeros at the cash desk was booked up to the column's limit (9,999,999,999.99): cash the
    # cashier then cannot hand over. Staff-entered payments are bounded by ABONENT_MAX_MANUAL_AMOUNT as adjustments.
    settings.ABONENT_MAX_MANUAL_AMOUNT = "100000.00"
    with pytest.raises(ValidationError) as err:
        actions.do_take_cash_payment(
            subscriber, amount="650000.00", token=actions.new_form_token(), acting_user=cashier
        )
    assert err.value.error_dict["amount"][0].code == "amount_too_large"
    with pytest.raises(ValidationError) as err:
        actions.do_take_staff_payment(
            subscriber,
            channel="manual",
            external_id="m1",
            amount="650000.00",
            method="manual",
            received_at=None,
            acting_user=cashier,
        )
    assert err.value.error_dict["amount"][0].code == "amount_too_large"
    assert not Payment.objects.exists()
    taken = actions.do_take_cash_payment(
        subscriber, amount="100000.00", token=actions.new_form_token(), acting_user=cashier
    )
    assert taken.payment.amount == 100000 and ledger.verify() == []
