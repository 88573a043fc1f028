"""Where documents are seen: the console's list, page, PDF, correction and card panel; the staff API; the portal's
own documents and statement PDF, and its API. Another subscriber's document is a 404 everywhere; bad input is a 4xx
with a field code and writes nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from abonent.documents import actions
from abonent.documents.models import Document
from abonent.portal.models import SessionKind
from abonent.portal.sessions import COOKIE, open_session
from abonent.staff.permissions import Role

from .conftest import NOVEMBER

pytestmark = pytest.mark.django_db


def _portal(subscriber) -> Client:
    _session, secret = open_session(subscriber, kind=SessionKind.WEB)
    client = Client()
    client.cookies[COOKIE] = secret
    return client


def _portal_api(subscriber) -> Client:
    _session, token = open_session(subscriber, kind=SessionKind.API)
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def issued(org, subscribe, admin, december):
    subscribe(org)
    return {d.kind: d for d in actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin).created}


@pytest.fixture
def staff(make_staff):
    def client(role):
        c = Client()
        c.force_login(make_staff(role))
        return c

    return client


def test_console_list_filters_and_pages_by_keyset(issued, staff):
    client = staff(Role.SUPPORT)

    everything = client.get("/staff/documents/")
    acts = client.get("/staff/documents/", {"kind": "act", "month": "2026-11"})
    first_page = client.get("/staff/documents/?before=999999999")

    assert everything.status_code == 200
    assert everything.content.count(b'class="document-row"') == 3
    assert acts.content.count(b'class="document-row"') == 1
    assert f'data-document="{issued["act"].pk}"'.encode() in acts.content
    assert first_page.content.count(b'class="document-row"') == 3


def test_console_list_sorts_pages_and_exports_the_filtered_documents(issued, staff, monkeypatch):
    import csv
    import io
    import re

    from openpyxl import load_workbook

    from abonent.documents import selectors

    client = staff(Role.SUPPORT)
    monkeypatch.setattr(selectors, "PAGE", 2)
    newest_first = sorted((d.pk for d in issued.values()), reverse=True)
    first = client.get("/staff/documents/").content.decode()
    assert [int(pk) for pk in re.findall(r'data-document="(\d+)"', first)] == newest_first[:2]
    cursor = re.search(r'rel="next" href="\?cursor=([^"]+)"', first).group(1)
    rest = client.get("/staff/documents/", {"cursor": cursor}).content.decode()
    assert [int(pk) for pk in re.findall(r'data-document="(\d+)"', rest)] == newest_first[2:]
    by_total = client.get("/staff/documents/", {"sort": "total"}).content.decode()
    totals = [Document.objects.get(pk=pk).total for pk in re.findall(r'data-document="(\d+)"', by_total)]
    assert totals == sorted(totals)

    body = b"".join(client.get("/staff/documents/list-export/", {"format": "csv", "kind": "act"}).streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    act = issued["act"]
    assert rows[0][:3] == ["Document", "No.", "Date"] and len(rows) == 2
    assert rows[1][1] == str(act.number) and rows[1][5] == act.subscriber.account_number
    assert rows[1][7] == str(act.total).replace(".", ",")
    response = client.get("/staff/documents/list-export/", {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 1 + len(issued) and {v[7] for v in values[1:]} == {float(d.total) for d in issued.values()}


def test_console_list_export_keeps_to_the_users_branches(issued, make_staff, other_branch):
    client = Client()
    client.force_login(make_staff(Role.SUPPORT, branches=[other_branch]))
    body = b"".join(client.get("/staff/documents/list-export/", {"format": "csv"}).streaming_content).decode()
    assert len(body.strip().splitlines()) == 1


def test_console_document_page_and_pdf(issued, staff):
    client = staff(Role.SUPPORT)
    act = issued["act"]

    page = client.get(f"/staff/documents/{act.pk}/")
    pdf = client.get(f"/staff/documents/{act.pk}/pdf/")

    assert page.status_code == 200 and "650" in page.content.decode()
    assert b"Issue a correction" not in page.content  # support may not correct
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf["Content-Disposition"] == 'attachment; filename="act-2026-1.pdf"'


def test_a_role_without_document_view_sees_nothing(issued, staff):
    client = staff(Role.ENGINEER)

    assert client.get("/staff/documents/").status_code == 403
    assert client.get(f"/staff/documents/{issued['act'].pk}/pdf/").status_code == 403


def test_console_correction_form_refuses_an_empty_reason(issued, admin):
    client = Client()
    client.force_login(admin)

    answer = client.post(f"/staff/documents/{issued['act'].pk}/correct/", {"reason": ""})

    assert answer.status_code == 400
    assert not Document.objects.filter(corrects=issued["act"]).exists()


def test_card_panel_lists_the_documents(issued, org, admin):
    client = Client()
    client.force_login(admin)

    card = client.get(f"/staff/subscribers/{org.pk}/")

    assert card.status_code == 200
    assert b'id="panel-documents"' in card.content
    assert card.content.count(b'class="border-bottom py-1 document-row"') == 3


def test_issue_from_the_card(org, subscribe, admin, december):
    subscribe(org)
    client = Client()
    client.force_login(admin)

    answer = client.post(f"/staff/documents/subscribers/{org.pk}/issue/", {"month": "2026-11"})

    assert answer.status_code == 302
    assert Document.objects.filter(subscriber=org).count() == 3


def test_generation_page_starts_a_run_and_shows_its_progress(org, subscribe, admin, december):
    from abonent.documents.models import DocumentRun

    subscribe(org)
    client = Client()
    client.force_login(admin)

    started = client.post("/staff/documents/generate/", {"month": "2026-11"})
    run = DocumentRun.objects.get()
    queued = client.get(f"/staff/documents/runs/{run.pk}/", headers={"HX-Request": "true"})
    actions.carry_out_run(run.pk)
    finished = client.get(f"/staff/documents/runs/{run.pk}/", headers={"HX-Request": "true"})

    assert started.status_code == 302 and started["Location"] == f"/staff/documents/runs/{run.pk}/"
    assert b'hx-trigger="every 2s"' in queued.content and b'aria-valuenow="0"' in queued.content
    assert b'data-status="done"' in finished.content and b'aria-valuenow="100"' in finished.content
    assert b"hx-trigger" not in finished.content  # the polling stops with the run


@pytest.mark.parametrize(
    ("month", "code"), [("2026-12", "month_not_closed"), ("2027-01", "month_not_closed"), ("2026-13", "invalid_month")]
)
def test_generation_page_refuses_a_bad_month(month, code, admin, december):
    from abonent.documents.models import DocumentRun

    client = Client()
    client.force_login(admin)

    answer = client.post("/staff/documents/generate/", {"month": month})

    assert answer.status_code == 400
    assert answer.context["form"].errors.as_data()["month"][0].code == code
    assert not DocumentRun.objects.exists()


# --- The staff API -------------------------------------------------------------------------------------------------


def test_api_lists_gets_and_downloads(issued, api):
    act = issued["act"]

    listing = api.get("/api/v1/documents", {"kind": "act"}).json()
    one = api.get(f"/api/v1/documents/{act.pk}").json()
    pdf = api.get(f"/api/v1/documents/{act.pk}/pdf")

    assert [d["id"] for d in listing["items"]] == [act.pk] and listing["next_before"] is None
    assert one["total"] == "650.00" and one["vat_total"] == "117.21" and one["number"] == 1
    assert one["lines"][0]["vat_amount"] == "117.21"
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_api_keyset_pages(issued, api):
    first = api.get("/api/v1/documents", {"limit": 2}).json()
    second = api.get("/api/v1/documents", {"limit": 2, "before": first["next_before"]}).json()

    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_before"] is None
    assert {d["id"] for d in first["items"] + second["items"]} == {d.pk for d in issued.values()}


def test_api_issue_is_idempotent_and_refuses_bad_input(org, subscribe, api, december):
    subscribe(org)
    body = {"subscriber_id": org.pk, "month": "2026-11"}

    first = api.post("/api/v1/documents/issue", body, key="issue-1")
    retry = api.post("/api/v1/documents/issue", body, key="issue-1")
    again = api.post("/api/v1/documents/issue", body)
    future = api.post("/api/v1/documents/issue", {"subscriber_id": org.pk, "month": "2027-01"})
    unknown = api.post("/api/v1/documents/issue", {"subscriber_id": 987654321, "month": "2026-11"})
    nonsense = api.post("/api/v1/documents/issue", {"subscriber_id": org.pk, "month": "2026-13"})

    assert first.status_code == 200 and len(first.json()["created"]) == 3
    assert retry.json() == first.json()
    assert again.json()["created"] == [] and len(again.json()["existing"]) == 3
    for answer, field, code in [
        (future, "month", "month_not_closed"),
        (unknown, "subscriber_id", "unknown_subscriber"),
        (nonsense, "month", "invalid_month"),
    ]:
        assert answer.status_code == 422, answer.content
        assert answer.json()["error"]["fields"][0]["field"] == field
        assert answer.json()["error"]["fields"][0]["code"] == code
    assert Document.objects.count() == 3


def test_api_hides_another_branchs_document(issued, make_staff, api_as, other_branch):
    outsider = api_as(make_staff(Role.SUPPORT, branches=[other_branch]))

    assert outsider.get(f"/api/v1/documents/{issued['act'].pk}").status_code == 404
    assert outsider.get(f"/api/v1/documents/{issued['act'].pk}/pdf").status_code == 404
    assert outsider.get("/api/v1/documents").json()["items"] == []


# --- The portal --------------------------------------------------------------------------------------------------


def test_portal_lists_and_downloads_own_documents(issued, org):
    client = _portal(org)

    page = client.get("/my/documents/")
    pdf = client.get(f"/my/documents/{issued['act'].pk}/pdf/")

    assert page.status_code == 200 and page.content.count(b'data-testid="document-row"') == 3
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_portal_answers_404_for_another_subscribers_document(issued, make_org):
    other = make_org(name="ООО «Лютик»", inn="7707049388")

    page = _portal(other).get(f"/my/documents/{issued['act'].pk}/pdf/")
    api = _portal_api(other).get(f"/api/v1/my/documents/{issued['act'].pk}/pdf")
    listing = _portal_api(other).get("/api/v1/my/documents")

    assert page.status_code == 404 and api.status_code == 404
    assert listing.json() == {"items": []}


def test_portal_api_lists_own_documents(issued, org):
    listing = _portal_api(org).get("/api/v1/my/documents").json()
    pdf = _portal_api(org).get(f"/api/v1/my/documents/{issued['invoice'].pk}/pdf")

    assert {d["kind"] for d in listing["items"]} == {"act", "vat_invoice", "invoice"}
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_portal_statement_pdf_opening_plus_lines_is_closing(make_subscriber, subscribe, december, tmp_path):
    import subprocess

    from abonent.portal import pay_data

    person = make_subscriber()
    subscribe(person)
    statement = pay_data.statement(person, dt.date(2026, 11, 1), dt.date(2026, 12, 2))

    answer = _portal(person).get("/my/pay/statement.pdf", {"from": "2026-11-01", "to": "2026-12-02"})

    # 5,000 paid, November's and December's 650 charged: 0 + 5000 − 650 − 650 = 3700.
    assert statement.opening == Decimal("0.00")
    assert statement.opening + sum(line.amount for line in statement.lines) == statement.closing == Decimal("3700.00")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    (tmp_path / "s.pdf").write_bytes(answer.content)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "s.pdf"), "-"], capture_output=True, timeout=60)
    words = " ".join(text.stdout.decode().split())
    assert "Входящий остаток 0,00" in words
    assert "Исходящий остаток 3 700,00" in words
    assert "5 000,00" in words and "-650,00" in words


def test_portal_statement_pdf_refuses_reversed_dates(make_subscriber, december):
    person = make_subscriber()

    answer = _portal(person).get("/my/pay/statement.pdf", {"from": "2026-11-30", "to": "2026-11-01"})

    assert answer.status_code == 400
    assert [e.code for e in answer.context["form"].non_field_errors().as_data()] == ["dates_reversed"]


def test_document_issued_message_links_to_the_portal_pdf(issued):
    from abonent.notifications.models import Message

    act = issued["act"]
    message = Message.objects.get(event="document_issued", dedup_key__startswith=f"document:{act.pk}:")

    assert f"https://billing.example.ru/my/documents/{act.pk}/pdf/" in message.body
    assert "№ 1 от 30.11.2026" in message.body


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 201}, {"before": -1}, {"kind": "receipt"}, {"month": "2026-13"}, {"month": "11.2026"}],
)
def test_api_list_refuses_bad_filters(api, query, db):
    answer = api.get("/api/v1/documents", query)

    assert answer.status_code == 422
    assert answer.json()["error"]["fields"]


def test_render_task_stores_the_pdf_once(issued):
    from abonent.documents.models import DocumentFile
    from abonent.documents.tasks import render_document

    first = render_document.call(document_id=issued["act"].pk)
    second = render_document.call(document_id=issued["act"].pk)

    assert first == second and len(first) == 64
    assert DocumentFile.objects.filter(document=issued["act"]).count() == 1
