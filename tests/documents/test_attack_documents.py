"""Attack review of the documents app: each test asserts the correct behaviour and fails on e81f635."""

import contextlib
import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import Client

from abonent.core import clock
from abonent.documents import actions, export_1c, rendering
from abonent.documents.models import Document
from abonent.staff.permissions import Role

from .conftest import NOVEMBER

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(org, subscribe, admin, december):
    subscribe(org)
    return {d.kind: d for d in actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin).created}


@pytest.fixture
def _postgresql_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("threads need PostgreSQL (and SQLite's flush cannot delete final documents)")


def _console(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


# --- Branches: a branch-limited operator (document.manage) reaches every branch ---------------------------------------


def test_branch_operator_1c_export_leaks_other_branchs_organisations(issued, make_staff, other_branch):
    """An operator of Клин exports November to 1C: the XML must not carry Тверь's organisation, its INN, its act
    and its payments (console `document.view`/`manage` are branch-scoped everywhere else)."""
    outsider = _console(make_staff(Role.OPERATOR, branches=[other_branch]))

    answer = outsider.get("/staff/documents/export/", {"month": "2026-11"})

    assert answer.status_code in (200, 403, 404)
    assert b"7736207543" not in answer.content  # Тверь's organisation's INN
    assert "Ромашка".encode() not in answer.content


def test_branch_operator_month_run_issues_other_branchs_documents(org, subscribe, make_staff, other_branch, december):
    """An operator of Клин starts the month-end run: it must not issue documents for Тверь's organisation."""
    subscribe(org)
    outsider = make_staff(Role.OPERATOR, branches=[other_branch])

    try:
        run = actions.do_start_document_run(NOVEMBER, acting_user=outsider)
    except Exception:  # refused outright is fine too
        return
    actions.carry_out_run(run.pk)

    assert not Document.objects.filter(subscriber=org).exists()


def test_branch_operator_sees_another_branchs_run_errors(org, make_staff, other_branch, admin, december):
    """A run's page lists the failed subscribers' ids and errors; another branch's operator must not open it."""
    run = actions.do_start_document_run(NOVEMBER, acting_user=admin)
    outsider = _console(make_staff(Role.OPERATOR, branches=[other_branch]))

    assert outsider.get(f"/staff/documents/runs/{run.pk}/").status_code in (403, 404)


# --- 500s on input ----------------------------------------------------------------------------------------------------


def test_api_list_month_9999_12_is_not_a_500(api, db):
    answer = api.get("/api/v1/documents", {"month": "9999-12"})

    assert answer.status_code in (200, 422), answer.status_code


def test_console_list_month_9999_12_is_not_a_500(admin, db):
    answer = _console(admin).get("/staff/documents/", {"month": "9999-12"})

    assert answer.status_code in (200, 400), answer.status_code


@pytest.mark.parametrize("param", ["subscriber", "before"])
def test_console_list_unicode_digits_are_not_a_500(admin, db, param):
    """``"²".isdigit()`` is True but ``int("²")`` raises: the console's `_as_int` lets it through."""
    answer = _console(admin).get("/staff/documents/", {param: "²"})

    assert answer.status_code in (200, 400, 404), answer.status_code


# --- Stored files -----------------------------------------------------------------------------------------------------


def test_a_pdf_missing_on_disk_is_not_a_500(issued, admin):
    """The PDF directory lost a file (restore, disk): the download must not crash with FileNotFoundError — the
    immutable DocumentFile row cannot be removed to re-render, so the document is unreachable forever."""
    act = issued["act"]
    stored = rendering.stored_file(act)
    (rendering.storage_dir() / stored.path).unlink()

    answer = _console(admin).get(f"/staff/documents/{act.pk}/pdf/")

    assert answer.status_code != 500


# --- Month closed twice -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_act_and_upd_at_once_close_a_month_twice(org, subscribe, december, monkeypatch):
    """Two issues of one month at once, one with closing=act (API parameter), one with closing=upd (or the setting
    changed while a run was going): the month must be closed by one scheme only, never act + СФ + УПД."""
    if connection.vendor != "postgresql":
        pytest.skip("threads need PostgreSQL")
    subscribe(org)
    original = actions._insert_final
    gate = threading.Barrier(2)
    seen = threading.local()

    def slow_insert(**kwargs):
        if not getattr(seen, "waited", False):
            seen.waited = True
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait(timeout=5)  # both generators have read "nothing issued yet"
        return original(**kwargs)

    monkeypatch.setattr(actions, "_insert_final", slow_insert)
    errors = []

    def issue(closing):
        from abonent.subscribers.models import Subscriber

        try:
            actions.do_issue_month_documents(
                Subscriber.objects.get(pk=org.pk), NOVEMBER, acting_user=None, closing=closing
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issue, args=(c,)) for c in ("act", "upd")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    kinds = sorted(Document.objects.filter(subscriber=org, period_start=NOVEMBER).values_list("kind", flat=True))
    assert kinds in (["act", "vat_invoice"], ["upd"]), kinds


# --- Organisations the run forgets ------------------------------------------------------------------------------------


def test_month_run_issues_the_act_of_an_organisation_closed_after_the_month(org, subscribe, admin, december):
    """An organisation used and paid for November, then closed its account on 2 December: the November run must
    still issue its act and счёт-фактура (the services were rendered; the СФ is due within 5 days) — the run
    takes only organisations whose status is *now* active."""
    from abonent.subscribers.actions.subscriber import do_close_subscriber

    subscribe(org)
    do_close_subscriber(org, reason="договор расторгнут", acting_user=admin)

    run = actions.do_start_document_run(NOVEMBER, acting_user=admin)
    actions.carry_out_run(run.pk)

    kinds = set(Document.objects.filter(subscriber=org, period_start=NOVEMBER).values_list("kind", flat=True))
    assert {"act", "vat_invoice"} <= kinds


# --- Requisites -------------------------------------------------------------------------------------------------------


def test_wrong_buyer_requisites_can_be_put_right(issued, org, admin):
    """The act and СФ went out with a wrong КПП; the operator fixes the card and issues a correction (an
    исправленный счёт-фактура): refused as `nothing_changed` because only (service, amount) is compared, so a
    final document with wrong requisites can never be replaced."""
    org.kpp = "773601002"
    org.save(update_fields=["kpp"])

    correction = actions.do_correct_document(issued["vat_invoice"], acting_user=admin, reason="неверный КПП")

    assert correction.buyer["kpp"] == "773601002"


def test_documents_are_not_issued_without_the_sellers_inn(org, subscribe, admin, december, settings):
    """ABONENT_COMPANY_INN (and the fiscal INN) unset: a счёт-фактура without the seller's ИНН is invalid, and a
    final document can neither be changed nor corrected for requisites — issuing must be refused, not numbered."""
    settings.ABONENT_COMPANY_INN = ""
    settings.ABONENT_FISCAL_INN = ""
    subscribe(org)

    with pytest.raises(ValidationError):
        actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)
    assert not Document.objects.exists()


# --- A held lock ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_issue_through_the_api_ends_when_the_series_lock_is_held(org, subscribe, api, december):
    """Another connection holds the act series' row (a stuck generator, an idle-in-transaction session): the API
    call must end within its deadline with a clear error (503), not wait for ever (no db_deadline in the app)."""
    import time

    from abonent.core.models import Sequence

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    subscribe(org)
    Sequence.objects.create(name=actions.sequence_name("act", 2026), last_value=0)
    locked, release = threading.Event(), threading.Event()

    def hold():
        from django.db import transaction

        try:
            with transaction.atomic():
                Sequence.objects.select_for_update().get(name=actions.sequence_name("act", 2026))
                locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    answers = []

    def call():
        try:
            answers.append(api.post("/api/v1/documents/issue", {"subscriber_id": org.pk, "month": "2026-11"}))
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(timeout=10)
    started = time.monotonic()
    caller = threading.Thread(target=call)
    caller.start()
    caller.join(timeout=20)
    elapsed = time.monotonic() - started
    release.set()
    caller.join(timeout=30)
    holder.join(timeout=30)

    assert elapsed < 20, "the API call was still waiting on the lock after 20 s"
    assert answers and answers[0].status_code == 503


# --- Corrections ------------------------------------------------------------------------------------------------------


@pytest.fixture
def corrected(org, subscribe, admin, december):
    """November's documents issued, then ten days of November given back as of 20 November, then the СФ and
    the act corrected on 2 December: 650.00 → 433.33."""
    from abonent.billing import actions as billing
    from abonent.billing.models import Charge

    subscription = subscribe(org)
    issued = {d.kind: d for d in actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin).created}
    fee = Charge.objects.get(subscription=subscription, period_start=NOVEMBER, kind="fee")
    with clock.travel_to(dt.date(2026, 11, 20)):
        billing.do_reverse_charge(
            fee, reason="авария", first_day=NOVEMBER, until=dt.date(2026, 11, 11), acting_user=admin
        )
    issued["act_correction"] = actions.do_correct_document(issued["act"], acting_user=admin, reason="перерасчёт")
    issued["sf_correction"] = actions.do_correct_document(issued["vat_invoice"], acting_user=admin, reason="перерасчёт")
    return issued


def test_1c_export_does_not_count_a_corrected_sale_twice(corrected):
    """November's export has the act (650.00); December's has its correction as one more full sale (433.33):
    1C books 1 083.33 of revenue for a month that sold 433.33. The correction must carry the difference
    (−216.67, a КорректировкаРеализации) or replace the sale, never add a second one."""
    _xml_nov, november = export_1c.build(NOVEMBER)
    _xml_dec, december_summary = export_1c.build(dt.date(2026, 12, 1))

    sold = Decimal(november["sales_total"].replace(" ", "").replace(",", ".")) + Decimal(
        december_summary["sales_total"].replace(" ", "").replace(",", ".")
    )
    assert sold == Decimal("433.33")


def test_correcting_vat_invoice_prints_the_1137_correction_form(corrected):
    """A корректировочный счёт-фактура has its own form (Приложение № 2 к постановлению № 1137) with the values
    before and after and the increase/decrease per line; the app prints the ordinary СФ form (Приложение № 1)
    with the new amounts only, so the buyer cannot deduct (or restore) the VAT difference from it."""
    html = rendering.render_html(corrected["sf_correction"])

    assert "Приложение № 2" in html
    assert "уменьшение" in html.lower()
    assert "216,67" in html  # 650.00 − 433.33


# --- Two first downloads at once --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_first_renders_at_once_do_not_break_the_file(_postgresql_only, issued, monkeypatch):
    """The worker's render_document and the subscriber's first download (the message carries the link) render the
    same document at once: write_private_file's shared temporary name lets one writer unlink the other's
    temporary file, so one of them crashes with FileNotFoundError (a 500) or the stored file is not the bytes
    its sha256 says — and the immutable DocumentFile row then refuses the document for ever."""
    act = issued["act"]
    pdf = rendering.render_pdf(act)
    gate = threading.Barrier(2)

    def rendered(_document):
        gate.wait(timeout=10)
        return pdf

    monkeypatch.setattr(rendering, "render_pdf", rendered)
    errors = []

    def render():
        try:
            rendering.stored_file(Document.objects.get(pk=act.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=render) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert rendering.read_file(act) == pdf


# --- Input that reaches the fiscal rates / the XML --------------------------------------------------------------------


@pytest.mark.parametrize("month", ["1900-02", "2018-12"])
def test_api_issue_for_a_month_before_the_vat_rates_is_a_4xx_not_a_500(org, subscribe, api, december, month):
    """A month before the first dated VAT rate (2019-01-01): FiscalError escapes as a 500 (the console's card
    form catches only ValidationError, so it is a 500 there too, and a run fails every organisation)."""
    subscribe(org)

    answer = api.post("/api/v1/documents/issue", {"subscriber_id": org.pk, "month": month})

    assert answer.status_code in (200, 422), answer.status_code
    assert not Document.objects.exists() or answer.status_code == 200


def test_1c_export_is_well_formed_xml_with_control_characters_in_a_name(make_org, subscribe, admin, december):
    """An organisation's name with a control character (pasted from a bank statement; the card accepts it): ElementTree
    writes it raw, the month's whole EnterpriseData file is not well-formed XML and 1C refuses every document."""
    import xml.etree.ElementTree as ET

    org = make_org(name="ООО «Рога\x0bи копыта»")
    subscribe(org)
    actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)

    data, _summary = export_1c.build(NOVEMBER)

    ET.fromstring(data)  # noqa: S314 - our own export, parsed to prove it well-formed


# --- The periodic month-end job ---------------------------------------------------------------------------------------


def test_month_end_job_catches_up_after_the_run_day_was_missed(org, subscribe, december, settings):
    """The worker was down at 03:00 on the 1st (or the 1st's slot ran after midnight): the scheduler enqueues only
    the latest slot and expects jobs to catch up themselves (core/scheduler.py), but month_end_documents returns
    unless today *is* the run day — November is never closed and no СФ goes out within its five days."""
    from abonent.documents.models import DocumentRun
    from abonent.documents.tasks import month_end_documents

    settings.ABONENT_DOCUMENTS_RUN_DAY = 1
    subscribe(org)  # the clock stands on 2 December

    month_end_documents.call()

    assert DocumentRun.objects.filter(month=NOVEMBER).exists()


# --- The statement PDF in a portal request ----------------------------------------------------------------------------


def test_statement_pdf_of_a_busy_account_does_not_hold_a_worker_for_long(make_subscriber, december):
    """A subscriber on a daily plan has ~1 100 postings in the three years a statement may cover; the PDF is laid
    out by WeasyPrint inside the portal request, with no cap on lines and no deadline (~9 ms a line here: 1 500
    lines ≈ 13 s of a core per click, repeatable by any subscriber). It must answer within 5 s or refuse the period
    with a clear 400, not tie up a worker."""
    import time

    from django.db import transaction

    from abonent.billing import ledger
    from abonent.billing.models import TransactionKind
    from abonent.portal.models import SessionKind
    from abonent.portal.sessions import COOKIE, open_session

    person = make_subscriber()
    account = ledger.subscriber_account(person.pk)
    other = ledger.system_account("adjustments")
    with transaction.atomic():
        for i in range(1500):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=i % 1000)
            amount = Decimal("-21.67") if i % 2 else Decimal("21.67")
            ledger.post(key=f"daily-{i}", kind=TransactionKind.ADJUSTMENT, effective_date=day,
                        legs=[(account.pk, amount), (other.pk, -amount)], subscriber_id=person.pk)  # fmt: skip
    _session, secret = open_session(person, kind=SessionKind.WEB)
    client = Client()
    client.cookies[COOKIE] = secret

    started = time.monotonic()
    answer = client.get("/my/pay/statement.pdf", {"from": "2024-01-01", "to": "2026-12-01"})
    elapsed = time.monotonic() - started

    assert answer.status_code == 400 or elapsed < 5, f"{answer.status_code} after {elapsed:.1f} s"
