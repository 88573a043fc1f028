"""The payments console: the journal with filters and totals, a payment's card and its one-time forms, the suspense
queue, conflicts; permissions and branch limits."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.cards import _sections, register_payment_section
from abonent.payments.models import Payment, PaymentConflict, PaymentStatus, Refund
from abonent.staff.permissions import Role

D = Decimal
NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def receive(external_id, amount, account_ref, *, channel="agent:qiwi", method="terminal", **kw):
    return actions.do_receive_payment(
        channel=channel, external_id=external_id, amount=amount, method=method, account_ref=account_ref, **kw
    ).payment


def form_token(client, url: str, form: str) -> str:
    html = client.get(url).content.decode()
    match = re.search(rf'<input type="hidden" name="token" value="([0-9a-f]{{32}})" [^>]*id="{form}-token"', html)
    assert match, f"no {form} form on {url}"
    return match.group(1)


@pytest.fixture(autouse=True)
def _now():
    with clock.travel_to(NOW):
        yield


@pytest.fixture
def payments(subscriber, make_subscriber, branch, other_branch, cashier):
    """Five payments: three channels, two branches, one in suspense, one taken at the cash desk."""
    far = make_subscriber(last_name="Сидоров", branch_obj=other_branch)
    return {
        "qiwi": receive("q1", "650.00", subscriber.account_number),
        "bank": receive("b1", "1500.00", subscriber.account_number, channel="bank", method="bank", payer="ООО Ромашка"),
        "far": receive("q2", "300.00", far.account_number, received_at=NOW - dt.timedelta(days=3)),
        "lost": receive("q3", "77.00", "55555", payer="Неизвестный"),
        "cash": actions.do_take_cash_payment(
            subscriber, amount="100.00", token=actions.new_form_token(), acting_user=cashier
        ).payment,
        "far_subscriber": far,
    }


@pytest.mark.django_db
def test_the_console_pages_by_role(payments, admin, cashier, operator, make_staff):
    pages = [
        reverse("payments:journal"),
        reverse("payments:card", args=[payments["qiwi"].pk]),
        reverse("payments:suspense"),
        reverse("payments:conflicts"),
        reverse("payments:cash_reports"),
        reverse("payments:receipt", args=[payments["cash"].pk]),
    ]
    for user in (admin, cashier, operator, make_staff(Role.SUPPORT)):
        client = client_for(user)
        for url in pages:
            assert client.get(url).status_code == 200, (user.role, url)
    engineer = client_for(make_staff(Role.ENGINEER))
    for url in pages:
        assert engineer.get(url).status_code == 403
        assert Client().get(url).status_code == 302
    menu = client_for(operator).get(reverse("subscribers:list")).content.decode()
    assert f'href="{reverse("payments:journal")}"' in menu
    assert f'href="{reverse("payments:journal")}"' not in engineer.get(reverse("subscribers:list")).content.decode()


@pytest.mark.django_db
def test_the_journal_filters_and_totals(payments, admin, cashier):
    client = client_for(admin)

    def shown(**params):
        html = client.get(reverse("payments:journal"), params).content.decode()
        ids = {int(pk) for pk in re.findall(r'<tr data-payment="(\d+)"', html)}
        count = int(re.search(r'id="total-count">(\d+)<', html).group(1))
        total = re.search(r'id="total-sum">([^<]+)<', html).group(1)
        return ids, count, total, html

    ids, count, total, html = shown()
    assert count == 5 and total == "2,627.00\xa0₽" and len(ids) == 5
    assert 'data-channel="agent:qiwi">agent:qiwi: 3 · 1,027.00' in html
    assert 'data-channel="bank">bank: 1 · 1,500.00' in html and 'data-channel="cash">cash: 1 · 100.00' in html
    # Credited less refunds: the suspense payment is not credited.
    assert 'id="total-credited">2,550.00\xa0₽' in html
    assert shown(channel="bank")[:3] == ({payments["bank"].pk}, 1, "1,500.00\xa0₽")
    assert shown(method="cash")[0] == {payments["cash"].pk}
    assert shown(status="suspense")[0] == {payments["lost"].pk}
    assert shown(cashier=cashier.pk)[0] == {payments["cash"].pk}
    assert shown(amount_min="100", amount_max="650,00")[0] == {
        payments["qiwi"].pk,
        payments["far"].pk,
        payments["cash"].pk,
    }
    assert shown(q="ромашка")[0] == {payments["bank"].pk} or shown(q="Ромашка")[0] == {payments["bank"].pk}
    assert shown(q=payments["far_subscriber"].account_number)[0] == {payments["far"].pk}
    assert shown(q="55555")[0] == {payments["lost"].pk}
    assert shown(date_from="2026-03-07", date_to="2026-03-07")[0] == {payments["far"].pk}
    assert shown(date_from="2026-03-08")[1] == 4
    # Nonsense filters are ignored with their errors shown, never a 500.
    for bad in ({"date_from": "2026-13-01"}, {"amount_min": "1e3"}, {"page": "99999999999999999999"}, {"cashier": "x"}):
        assert client.get(reverse("payments:journal"), bad).status_code == 200
    reversed_period = client.get(reverse("payments:journal"), {"date_from": "2026-03-10", "date_to": "2026-03-01"})
    assert "The period ends before it starts." in reversed_period.content.decode()


@pytest.mark.django_db
def test_the_journal_pages_newest_first(subscriber, admin):
    for i in range(55):
        receive(f"p{i}", "10.00", subscriber.account_number, received_at=NOW - dt.timedelta(minutes=i))
    client = client_for(admin)
    first = client.get(reverse("payments:journal")).content.decode()
    cursor = re.search(r'rel="next" href="\?cursor=([^"]+)"', first).group(1)
    second = client.get(reverse("payments:journal"), {"cursor": cursor}).content.decode()
    first_ids = [int(pk) for pk in re.findall(r'<tr data-payment="(\d+)"', first)]
    second_ids = [int(pk) for pk in re.findall(r'<tr data-payment="(\d+)"', second)]
    assert len(first_ids) == 50 and len(second_ids) == 5 and not set(first_ids) & set(second_ids)
    assert first_ids[0] == Payment.objects.get(external_id="p0").pk
    assert second_ids[-1] == Payment.objects.get(external_id="p54").pk
    assert 'id="total-count">55<' in first and 'id="total-count">55<' in second
    assert 'rel="next"' not in second and 'rel="prev"' in second


@pytest.mark.django_db
def test_the_journal_sorts_by_amount_and_keeps_filters_across_pages(subscriber, admin):
    for i in range(55):
        receive(f"s{i}", f"{100 + i}.00", subscriber.account_number, received_at=NOW - dt.timedelta(minutes=i))
    receive("other", "999.00", subscriber.account_number, channel="bank", method="bank")
    client = client_for(admin)
    html = client.get(reverse("payments:journal"), {"channel": "agent:qiwi", "sort": "-amount"}).content.decode()
    amounts = [Payment.objects.get(pk=pk).amount for pk in re.findall(r'<tr data-payment="(\d+)"', html)]
    assert amounts[:3] == [D("154.00"), D("153.00"), D("152.00")] and len(amounts) == 50
    cursor = re.search(r'rel="next" href="\?([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "channel=agent%3Aqiwi" in cursor and "sort=-amount" in cursor
    rest = client.get(reverse("payments:journal") + "?" + cursor).content.decode()
    amounts += [Payment.objects.get(pk=pk).amount for pk in re.findall(r'<tr data-payment="(\d+)"', rest)]
    assert amounts == [D(f"{100 + i}.00") for i in reversed(range(55))]
    # The header links turn the sort over; a sort not offered is the default (newest first), never a 500.
    assert 'sort=amount">Amount' in html.replace("&amp;", "&")
    unknown = client.get(reverse("payments:journal"), {"sort": "payer; DROP"}).content.decode()
    assert re.findall(r'<tr data-payment="(\d+)"', unknown)[0] == str(Payment.objects.get(external_id="other").pk)


@pytest.mark.django_db
def test_a_branch_limited_user_sees_only_their_branches_payments(payments, make_staff, other_branch):
    limited = client_for(make_staff(Role.OPERATOR, branches=[other_branch]))
    html = limited.get(reverse("payments:journal")).content.decode()
    # Their branch's payment, and the suspense payment of nobody (the suspense queue is the whole ISP's).
    assert {int(pk) for pk in re.findall(r'<tr data-payment="(\d+)"', html)} == {
        payments["far"].pk,
        payments["lost"].pk,
    }
    assert 'id="total-count">2<' in html
    assert limited.get(reverse("payments:card", args=[payments["qiwi"].pk])).status_code == 404
    # A payment of nobody, in suspense, is the whole ISP's: whoever finds the payer assigns it.
    assert limited.get(reverse("payments:card", args=[payments["lost"].pk])).status_code == 200
    assert limited.get(reverse("payments:receipt", args=[payments["cash"].pk])).status_code == 404
    assert limited.get(reverse("payments:card", args=[payments["far"].pk])).status_code == 200
    assert f'data-payment="{payments["lost"].pk}"' in limited.get(reverse("payments:suspense")).content.decode()


@pytest.mark.django_db
def test_the_card_shows_the_payment_its_ledger_refunds_conflicts_and_sections(payments, admin, subscriber):
    payment = payments["qiwi"]
    receive("q1", "6500.00", subscriber.account_number)  # a conflict
    actions.do_refund_payment(payment, amount="50.00", reason="overpaid", acting_user=admin, key="k1")

    @register_payment_section
    def fiscal(request, p):
        return f'<section id="fiscal-section">receipt of {p.pk}</section>' if p.pk == payment.pk else ""

    @register_payment_section
    def broken(request, p):
        raise RuntimeError("a section failing must not take the card down")

    try:
        html = client_for(admin).get(reverse("payments:card", args=[payment.pk])).content.decode()
        other = client_for(admin).get(reverse("payments:card", args=[payments["bank"].pk])).content.decode()
    finally:
        _sections.remove(fiscal)
        _sections.remove(broken)
    assert f"receipt of {payment.pk}" in html and "fiscal-section" not in other
    assert "650.00" in html and "q1" in html and subscriber.display_name in html
    transactions = html[html.index('id="payment-transactions"') :]
    assert "−50.00" in transactions or "-50.00" in transactions
    assert "overpaid" in html and "6,500.00" in html
    assert 'id="form-refund"' in html and 'id="form-cancel"' not in html  # refunded: cannot be cancelled


@pytest.mark.django_db
def test_refund_from_the_card_runs_once_per_form(payments, admin, subscriber):
    payment = payments["qiwi"]
    client = client_for(admin)
    card = reverse("payments:card", args=[payment.pk])
    token = form_token(client, card, "refund")
    url = reverse("payments:refund", args=[payment.pk])
    before = get_balance(subscriber).balance
    first = client.post(url, {"amount": "200,00", "reason": "asked back", "token": token})
    again = client.post(url, {"amount": "200,00", "reason": "asked back", "token": token})
    assert first.status_code == again.status_code == 302
    assert Refund.objects.filter(payment=payment).count() == 1
    assert get_balance(subscriber).balance == before - D("200.00")
    too_much = client.post(url, {"amount": "5000", "reason": "x", "token": form_token(client, card, "refund")})
    assert too_much.status_code == 422 and "can still be refunded" in too_much.content.decode()
    assert get_balance(subscriber).balance == before - D("200.00") and ledger.verify() == []


@pytest.mark.django_db
def test_only_the_administrator_refunds(payments, cashier, operator, subscriber):
    payment = payments["qiwi"]
    for user in (cashier, operator):
        response = client_for(user).post(
            reverse("payments:refund", args=[payment.pk]), {"amount": "10", "reason": "x", "token": "e" * 32}
        )
        assert response.status_code == 403
    assert not Refund.objects.exists() and get_balance(subscriber).balance == D("2250.00")


@pytest.mark.django_db
def test_cancel_from_the_card_once(payments, cashier, subscriber):
    payment = payments["cash"]
    client = client_for(cashier)
    token = form_token(client, reverse("payments:card", args=[payment.pk]), "cancel")
    url = reverse("payments:cancel", args=[payment.pk])
    assert client.post(url, {"reason": "wrong amount", "token": token}).status_code == 302
    assert client.post(url, {"reason": "wrong amount", "token": token}).status_code == 302
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CANCELLED
    assert get_balance(subscriber).balance == D("2150.00") and ledger.verify() == []
    # A cashier cannot cancel what someone else took.
    other = client_for(cashier).post(
        reverse("payments:cancel", args=[payments["qiwi"].pk]), {"reason": "x", "token": "f" * 32}
    )
    assert other.status_code == 422 and Payment.objects.get(pk=payments["qiwi"].pk).status == "credited"


@pytest.mark.django_db
def test_assign_from_the_suspense_queue_once(payments, cashier, subscriber):
    lost = payments["lost"]
    client = client_for(cashier)
    html = client.get(reverse("payments:suspense")).content.decode()
    assert "Неизвестный" in html and "55555" in html and "No subscriber has this account" in html
    token = re.search(rf'value="([0-9a-f]{{32}})" id="assign-{lost.pk}-token"', html).group(1)
    url = reverse("payments:assign", args=[lost.pk])
    data = {
        "account": subscriber.account_number,
        "reason": "called the payer",
        "token": token,
        "next": "/staff/payments/suspense/",
    }
    first = client.post(url, data)
    again = client.post(url, data)
    assert first.status_code == again.status_code == 302 and first["Location"] == "/staff/payments/suspense/"
    assert Payment.objects.get(pk=lost.pk).status == PaymentStatus.CREDITED
    assert get_balance(subscriber).balance == D("2327.00") and ledger.verify() == []
    # An outside "next" is not followed.
    other = receive("q9", "5.00", "777")
    response = client.post(
        reverse("payments:assign", args=[other.pk]),
        {"account": subscriber.account_number, "token": "9" * 32, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("payments:card", args=[other.pk])


@pytest.mark.django_db
def test_a_foreign_branch_cashier_cannot_assign_to_a_subscriber_they_cannot_see(
    payments, make_staff, other_branch, subscriber
):
    far_cashier = make_staff(Role.CASHIER, branches=[other_branch])
    admin_lost = payments["lost"]
    # A suspense payment of nobody is the whole ISP's, but it goes only to a subscriber the cashier can see…
    refused = client_for(far_cashier).post(
        reverse("payments:assign", args=[admin_lost.pk]),
        {"account": subscriber.account_number, "token": "1" * 32},
    )
    assert refused.status_code == 422
    admin_lost.refresh_from_db()
    assert admin_lost.status == "suspense" and admin_lost.subscriber_id is None
    # …and one of their branch (a closed account's) cannot go to a subscriber of another branch.
    far = payments["far_subscriber"]
    from abonent.subscribers import actions as subscribers

    subscribers.do_close_subscriber(far, reason="moved", acting_user=make_staff(Role.ADMIN, username="root"))
    parked = receive("q5", "40.00", far.account_number)
    assert parked.status == PaymentStatus.SUSPENSE and parked.subscriber_id == far.pk
    response = client_for(far_cashier).post(
        reverse("payments:assign", args=[parked.pk]), {"account": subscriber.account_number, "token": "2" * 32}
    )
    assert response.status_code == 422 and "No subscriber you can see has this account." in response.content.decode()
    assert Payment.objects.get(pk=parked.pk).status == PaymentStatus.SUSPENSE
    assert get_balance(subscriber).balance == D("2250.00") and ledger.verify() == []


@pytest.mark.django_db
def test_return_from_suspense_and_resolve_a_conflict(payments, admin, cashier, subscriber):
    lost = payments["lost"]
    client = client_for(admin)
    token = form_token(client, reverse("payments:card", args=[lost.pk]), "return")
    url = reverse("payments:return", args=[lost.pk])
    assert client_for(cashier).post(url, {"reason": "x", "token": token}).status_code == 403
    assert client.post(url, {"reason": "", "token": token}).status_code == 422  # a reason is needed
    assert client.post(url, {"reason": "sent back by transfer", "token": token}).status_code == 302
    assert client.post(url, {"reason": "sent back by transfer", "token": token}).status_code == 302
    assert Payment.objects.get(pk=lost.pk).status == PaymentStatus.RETURNED and Refund.objects.count() == 1
    assert ledger.verify() == []

    receive("q1", "6500.00", subscriber.account_number)
    conflict = PaymentConflict.objects.get()
    page = client_for(cashier).get(reverse("payments:conflicts")).content.decode()
    assert "6,500.00" in page
    token = re.search(rf'value="([0-9a-f]{{32}})" id="resolve-{conflict.pk}-token"', page).group(1)
    url = reverse("payments:resolve_conflict", args=[conflict.pk])
    assert client_for(cashier).post(url, {"resolution": "", "token": token}).status_code == 422
    assert (
        client_for(cashier).post(url, {"resolution": "terminal resent by mistake", "token": token}).status_code == 302
    )
    conflict.refresh_from_db()
    assert conflict.resolved_at is not None and conflict.resolution == "terminal resent by mistake"
    assert "No open conflicts." in client_for(cashier).get(reverse("payments:conflicts")).content.decode()


@pytest.mark.django_db
def test_the_admin_shows_payments_read_only(payments, admin):
    client = client_for(admin)
    for model in ("payment", "paymentconflict", "refund", "cashday"):
        assert client.get(f"/staff/admin/payments/{model}/").status_code == 200
        assert client.get(f"/staff/admin/payments/{model}/add/").status_code == 403
    page = client.get(f"/staff/admin/payments/payment/{payments['qiwi'].pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


@pytest.mark.django_db
def test_the_journal_exports_the_filtered_set_as_csv_without_formulas(payments, admin, make_staff, other_branch):
    receive("=HYPERLINK(1)", "12.00", "777", payer="=cmd|' /C calc'!A0")
    response = client_for(admin).get(reverse("payments:journal_csv"), {"channel": "agent:qiwi"})
    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and body.startswith("\ufeffNumber;Received;")
    lines = body.strip().splitlines()
    assert len(lines) == 1 + 4  # header + q1, q2, q3 and the one above
    assert "'=HYPERLINK(1)" in body and "'=cmd|" in body and ";=" not in body
    limited = client_for(make_staff(Role.OPERATOR, branches=[other_branch]))
    limited_body = b"".join(limited.get(reverse("payments:journal_csv")).streaming_content).decode()
    # Their branch's q2 and the two payments of nobody in suspense (q3 and the one above).
    assert len(limited_body.strip().splitlines()) == 4 and "q2" in limited_body and "q3" in limited_body
    assert client_for(make_staff(Role.ENGINEER)).get(reverse("payments:journal_csv")).status_code == 403


@pytest.mark.django_db
def test_the_journal_exports_xlsx_with_numbers_and_dates_in_the_list_order(payments, admin):
    import io

    from openpyxl import load_workbook

    response = client_for(admin).get(reverse("payments:journal_export"), {"format": "xlsx", "sort": "-amount"})
    assert response.status_code == 200 and response["Content-Disposition"].endswith('filename="payments.xlsx"')
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Number", "Received", "Channel") and rows[0][7] == "Amount"
    assert [r[7] for r in rows[1:]] == [1500, 650, 300, 100, 77]  # numbers an accountant can sum, biggest first
    assert rows[1][0] == payments["bank"].pk and rows[1][5] == payments["bank"].subscriber.account_number
    assert rows[1][1] == dt.datetime(2026, 3, 10, 12, 0)  # the operator's local time (Moscow), a real date
    bad = client_for(admin).get(reverse("payments:journal_export"), {"format": "pdf"})
    assert bad.status_code == 400


@pytest.mark.django_db
def test_the_journal_and_the_card_take_as_many_queries_for_many_rows_as_for_few(subscriber, admin, cashier):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(admin)

    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    actions.do_take_cash_payment(subscriber, amount="10.00", token=actions.new_form_token(), acting_user=cashier)
    few = queries(reverse("payments:journal"))
    for i in range(30):
        receive(f"n{i}", "10.00", subscriber.account_number if i % 2 else "404")
    assert queries(reverse("payments:journal")) == few
    payment = Payment.objects.filter(channel="agent:qiwi", status="credited").first()
    for i in range(3):
        actions.do_refund_payment(payment, amount="1.00", reason="r", acting_user=admin, key=f"q{i}")
    card = queries(reverse("payments:card", args=[payment.pk]))
    actions.do_refund_payment(payment, amount="1.00", reason="r", acting_user=admin, key="q9")
    assert queries(reverse("payments:card", args=[payment.pk])) == card


@pytest.mark.django_db
def test_a_bad_filter_is_left_out_and_the_good_ones_apply(payments, admin):
    html = client_for(admin).get(reverse("payments:journal"), {"channel": "bank", "amount_min": "abc"}).content.decode()
    assert 'id="total-count">1<' in html and "Type an amount like 650 or 650,50." in html
