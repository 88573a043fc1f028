"""Attack review of ticket attachments: several files under one field, the same text sent again with another file,
odd file names, polyglots served as active content, exact sizes. What a defence that holds looks like is tested too
(named so)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from abonent.helpdesk.models import Ticket, TicketAttachment, TicketComment
from abonent.portal.models import SessionKind
from abonent.portal.sessions import COOKIE, open_session

pytestmark = pytest.mark.usefixtures("now")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
PDF_HTML = b"%PDF-1.4\n<html><body><script>alert(document.cookie)</script></body></html>\n%%EOF\n"
GIF_JS = b"GIF89a/*<svg onload=alert(1)>*/=1;alert(document.domain)//"
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>\n"


def _portal(subscriber) -> Client:
    _session, secret = open_session(subscriber, kind=SessionKind.WEB)
    client = Client()
    client.cookies[COOKIE] = secret
    return client


def _stored(directory) -> list:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


@pytest.fixture
def ticket(open_ticket):
    return open_ticket()


def test_a_staff_reply_with_two_files_under_one_field_keeps_both_not_only_the_last(ticket, support, client_of):
    response = client_of(support).post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {
            "text": "Два скриншота",
            "visibility": "public",
            "attachment": [SimpleUploadedFile("one.png", PNG), SimpleUploadedFile("two.png", PNG + b"2")],
        },
    )
    assert response.status_code == 302
    assert sorted(TicketAttachment.objects.values_list("file_name", flat=True)) == ["one.png", "two.png"]


def test_a_portal_reply_with_six_files_is_refused_whole_not_cut_to_one(ticket, customer, _attachments_dir):
    comments = TicketComment.objects.count()
    response = _portal(customer).post(
        f"/my/requests/{ticket.pk}/",
        {"text": "Фото", "attachment": [SimpleUploadedFile(f"{n}.png", PNG + bytes([n])) for n in range(6)]},
    )
    assert response.status_code == 422
    assert "At most 5 files" in response.content.decode()
    assert TicketComment.objects.count() == comments and _stored(_attachments_dir) == []


def test_the_same_text_again_with_another_file_is_not_taken_for_a_double_submit(ticket, customer):
    client = _portal(customer)
    first = client.post(f"/my/requests/{ticket.pk}/", {"text": "Фото", "attachment": SimpleUploadedFile("a.png", PNG)})
    second = client.post(
        f"/my/requests/{ticket.pk}/", {"text": "Фото", "attachment": SimpleUploadedFile("b.png", PNG + b"b")}
    )
    assert (first.status_code, second.status_code) == (302, 302)
    # "Your message is sent" with the second photo dropped would lose it: both files are on the ticket.
    assert sorted(TicketAttachment.objects.values_list("file_name", flat=True)) == ["a.png", "b.png"]


def test_the_same_new_request_again_with_another_file_is_not_taken_for_a_double_submit(customer):
    client = _portal(customer)
    form = {"category": "no_connection", "subject": "Роутер", "text": "Фото индикаторов"}
    client.post("/my/requests/", {**form, "attachment": SimpleUploadedFile("a.png", PNG)})
    client.post("/my/requests/", {**form, "attachment": SimpleUploadedFile("b.png", PNG + b"b")})
    assert sorted(TicketAttachment.objects.values_list("file_name", flat=True)) == ["a.png", "b.png"]


def test_a_true_double_submit_with_the_same_file_still_stores_it_once(ticket, customer, _attachments_dir):
    client = _portal(customer)
    for _ in range(2):
        assert (
            client.post(
                f"/my/requests/{ticket.pk}/", {"text": "Фото", "attachment": SimpleUploadedFile("a.png", PNG)}
            ).status_code
            == 302
        )
    assert TicketAttachment.objects.count() == 1 and len(_stored(_attachments_dir)) == 1


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("evil.html", HTML),
        ("evil.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("evil.pdf", HTML),  # an HTML page named .pdf
        ("evil.png\x00.html", PNG),
        ("photo\u202egnp.html", HTML),  # reads "photo.lmth.png" with the override
    ],
)
def test_defence_holds_active_content_is_refused(ticket, support, client_of, name, content):
    response = client_of(support).post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {"text": "x", "visibility": "public", "attachment": SimpleUploadedFile(name, content)},
    )
    assert response.status_code == 422 and not TicketAttachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "inline"),
    [("scan.pdf", PDF_HTML, True), ("anim.gif", GIF_JS, True), ("page.txt", HTML, False)],
)
def test_defence_holds_a_polyglot_is_served_as_its_sniffed_type_sandboxed(
    ticket, support, client_of, name, content, inline
):
    client = client_of(support)
    assert (
        client.post(
            f"/staff/helpdesk/{ticket.pk}/reply/",
            {"text": "x", "visibility": "public", "attachment": SimpleUploadedFile(name, content)},
        ).status_code
        == 302
    )
    row = TicketAttachment.objects.get()
    response = client.get(f"/staff/helpdesk/attachments/{row.pk}/")
    assert "html" not in response["Content-Type"] and "svg" not in response["Content-Type"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert response["Content-Disposition"].startswith("inline" if inline else "attachment")


def test_defence_holds_odd_names_are_cut_to_a_base_name_without_controls(ticket, support, client_of):
    name = "../../" + "я" * 300 + '\u202e\u200f\r\n"<x>.png'
    client = client_of(support)
    client.post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {"text": "x", "visibility": "public", "attachment": SimpleUploadedFile(name, PNG)},
    )
    row = TicketAttachment.objects.get()
    assert "/" not in row.file_name and "\u202e" not in row.file_name and "\n" not in row.file_name
    assert row.file_name.endswith(".png") and len(row.file_name) <= 200
    response = client.get(f"/staff/helpdesk/attachments/{row.pk}/")
    assert "\n" not in response["Content-Disposition"] and "\r" not in response["Content-Disposition"]


def test_defence_holds_exactly_the_limit_is_taken_one_more_byte_is_413(ticket, support, client_of, settings):
    settings.ABONENT_HELPDESK_ATTACHMENT_MAX_BYTES = 4096
    client = client_of(support)
    at_limit = PNG + bytes(4096 - len(PNG))
    post = {"visibility": "public"}
    over = client.post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {**post, "text": "b", "attachment": SimpleUploadedFile("b.png", at_limit + b"x")},
    )
    ok = client.post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {**post, "text": "a", "attachment": SimpleUploadedFile("a.png", at_limit)},
    )
    assert (ok.status_code, over.status_code) == (302, 413)
    assert TicketAttachment.objects.get().size_bytes == 4096
    assert Ticket.objects.get(pk=ticket.pk).comments.count() == 2


@pytest.mark.parametrize("where", ["comment", "open"])
def test_a_failure_after_the_files_are_stored_removes_them(
    ticket, support, customer, _attachments_dir, monkeypatch, where
):
    import io

    from abonent.helpdesk import actions
    from abonent.helpdesk.attachments import Upload

    def broken(**kwargs):
        raise RuntimeError("statement timeout")

    # The audit row comes after the files are written (it lists them): its failure rolls the message back, and the
    # files must go with it, or every such failure leaves an orphan in the private directory.
    monkeypatch.setattr(actions.audit, "record", broken)
    upload = Upload("a.png", io.BytesIO(PNG))
    with pytest.raises(RuntimeError):
        if where == "comment":
            actions.do_comment_ticket(ticket, text="Файл", acting_user=support, uploads=[upload])
        else:
            data = actions.TicketData(category="other", subject="Фото", text="Вот")
            actions.do_open_ticket(customer, data, source="portal", acting_user=None, uploads=[upload])
    assert _stored(_attachments_dir) == []


def test_a_write_that_fails_half_way_leaves_no_part_file(ticket, support, _attachments_dir, monkeypatch):
    import io

    from abonent.helpdesk import actions, attachments
    from abonent.helpdesk.attachments import Upload

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(attachments.os, "replace", full_disk)
    with pytest.raises(OSError):
        actions.do_comment_ticket(ticket, text="Файл", acting_user=support, uploads=[Upload("a.png", io.BytesIO(PNG))])
    assert _stored(_attachments_dir) == []


def test_defence_holds_a_queue_named_like_a_script_is_shown_as_text(ticket, support, client_of):
    from abonent.helpdesk import routing
    from abonent.helpdesk.models import Queue

    queue = Queue.objects.create(name="<script>alert(1)</script>", supervisor=support)
    routing.do_route_ticket(ticket, routing.Routing(queue_id=queue.pk, assignee_id=support.pk), acting_user=support)
    client = client_of(support)
    for url in ("/staff/helpdesk/", f"/staff/helpdesk/{ticket.pk}/", "/staff/helpdesk/sla/"):
        page = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
