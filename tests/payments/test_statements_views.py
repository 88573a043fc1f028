"""The console's statement pages: upload, review every line, assign a suspense or ambiguous line."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.payments import actions
from abonent.payments.models import BankStatement, PaymentStatus, StatementLine
from abonent.staff.permissions import Role

from .statement_samples import cp1251, document, statement

D = Decimal
INN_PERSON = "500100732259"


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def balance(subscriber) -> Decimal:
    return get_balance(subscriber).balance


@pytest.fixture
def twins(make_subscriber):
    return make_subscriber(inn=INN_PERSON), make_subscriber(inn=INN_PERSON, last_name="Иванова")


def sample(subscriber) -> bytes:
    return cp1251(
        statement(
            document(number="1", amount="650.00", purpose=f"Оплата л/с {subscriber.account_number}"),
            document(number="2", amount="800.00", payer_inn=INN_PERSON, purpose="за интернет"),
            document(number="3", amount="12,3,4", purpose="за интернет"),
            document(number="4", amount="100.00", purpose="без номера"),
        )
    )


@pytest.mark.django_db
def test_upload_then_review_every_line(cashier, subscriber, twins):
    client = client_of(cashier)
    assert client.get("/staff/payments/statements/").status_code == 200
    response = client.post(
        "/staff/payments/statements/", {"file": SimpleUploadedFile("kl_to_1c.txt", sample(subscriber))}
    )
    s = BankStatement.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/staff/payments/statements/{s.pk}/"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('data-line="') == 4
    assert 'data-status="credited"' in html and 'data-status="ambiguous"' in html and 'data-status="broken"' in html
    assert "The amount cannot be read: 12,3,4" in html and "Сумма=12,3,4" in html
    assert twins[0].account_number in html and twins[1].account_number in html  # the candidates
    assert html.count('data-form="assign-') == 2  # the ambiguous and the unknown line
    assert balance(subscriber) == D("650.00")
    # Filtered by status
    broken = client.get(response["Location"], {"status": "broken"}).content.decode()
    assert broken.count('data-line="') == 1
    # The same file again: nothing new, back to the same statement
    again = client.post("/staff/payments/statements/", {"file": SimpleUploadedFile("x.txt", sample(subscriber))})
    assert again.status_code == 302 and BankStatement.objects.count() == 1
    listing = client.get("/staff/payments/statements/").content.decode()
    assert listing.count('data-statement="') == 1 and "kl_to_1c.txt" in listing


@pytest.mark.django_db
def test_a_file_that_is_not_a_statement_is_shown_back_with_the_error(cashier):
    response = client_of(cashier).post(
        "/staff/payments/statements/", {"file": SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff\xe0 JFIF")}
    )
    assert response.status_code == 422 and "1CClientBankExchange" in response.content.decode()
    assert BankStatement.objects.count() == 0


@pytest.mark.django_db
def test_assign_an_ambiguous_line_to_a_candidate_and_an_unknown_one_by_account_number(cashier, subscriber, twins):
    s = actions.do_import_statement(sample(subscriber), acting_user=cashier).statement
    ambiguous = s.lines.get(number="2")
    unknown = s.lines.get(number="4")
    client = client_of(cashier)
    url = f"/staff/payments/statements/{s.pk}/lines/{ambiguous.pk}/assign/"
    response = client.post(
        url, {f"line-{ambiguous.pk}-candidate": twins[1].pk, f"line-{ambiguous.pk}-reason": "звонила"}
    )
    assert response.status_code == 302 and balance(twins[1]) == D("800.00") and balance(twins[0]) == D("0.00")
    # Assigned already: a second post does not credit again
    again = client.post(url, {f"line-{ambiguous.pk}-candidate": twins[0].pk})
    assert again.status_code == 422 and balance(twins[0]) == D("0.00")
    # A typo in the account number is shown back, nothing credited
    url = f"/staff/payments/statements/{s.pk}/lines/{unknown.pk}/assign/"
    typo = client.post(url, {f"line-{unknown.pk}-account_number": "000000000"})
    assert typo.status_code == 422 and "No subscriber has this account number." in typo.content.decode()
    empty = client.post(url, {})
    assert empty.status_code == 422
    ok = client.post(url, {f"line-{unknown.pk}-account_number": subscriber.account_number})
    assert ok.status_code == 302 and balance(subscriber) == D("750.00")
    assert StatementLine.objects.get(pk=unknown.pk).payment.status == PaymentStatus.CREDITED
    assert ledger.verify() == []


@pytest.mark.django_db
def test_who_sees_and_who_assigns(make_staff, subscriber, twins, cashier, other_branch):
    s = actions.do_import_statement(sample(subscriber), acting_user=cashier).statement
    support = client_of(make_staff(Role.SUPPORT))
    assert support.get("/staff/payments/statements/").status_code == 403
    assert support.get(f"/staff/payments/statements/{s.pk}/").status_code == 403
    assert Client().get("/staff/payments/statements/").status_code == 302  # to the login page
    unknown = s.lines.get(number="4")
    url = f"/staff/payments/statements/{s.pk}/lines/{unknown.pk}/assign/"
    denied = support.post(url, {f"line-{unknown.pk}-account_number": subscriber.account_number})
    assert denied.status_code == 403
    # A cashier of another branch sees the line but neither the candidates nor may credit this branch's subscriber
    stranger = client_of(make_staff(Role.CASHIER, branches=[other_branch]))
    page = stranger.get(f"/staff/payments/statements/{s.pk}/").content.decode()
    assert twins[0].account_number not in page and "in other branches" in page
    refused = stranger.post(url, {f"line-{unknown.pk}-account_number": subscriber.account_number})
    assert refused.status_code == 422 and balance(subscriber) == D("650.00")
    assert ledger.verify() == []
