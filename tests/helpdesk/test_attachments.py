"""Files on a ticket's messages: the size limit and the type allow-list (by the first bytes) refuse with a field error
and store nothing; the files are served only through the checked views, never to another branch's staff, never to
another subscriber, never from an internal note to the portal."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from abonent.core.models import AuditEvent
from abonent.helpdesk import actions
from abonent.helpdesk.attachments import Upload, sniff
from abonent.helpdesk.models import Ticket, TicketAttachment, TicketComment, TicketSource
from abonent.portal.models import SessionKind
from abonent.portal.sessions import COOKIE, open_session
from abonent.staff.permissions import Role

pytestmark = pytest.mark.usefixtures("now")

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01" + bytes(200)


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


@pytest.fixture
def small_limit(settings):
    settings.ABONENT_HELPDESK_ATTACHMENT_MAX_BYTES = 1024
    return 1024


def test_the_type_is_what_the_first_bytes_say():
    assert sniff(PNG) == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0" + bytes(10)) == "image/jpeg"
    assert sniff(PDF) == "application/pdf"
    assert sniff("Лог роутера: link down\n".encode()) == "text/plain"
    assert sniff(ELF) is None
    assert sniff(b"MZ\x90\x00\x03") is None
    assert sniff(b"<svg onload=alert(1)>\x00") is None


def test_a_reply_with_a_file_stores_it_privately_and_the_page_links_to_the_checked_view(
    ticket, support, client_of, _attachments_dir
):
    client = client_of(support)
    response = client.post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {"text": "Скриншот настроек", "visibility": "public", "attachment": SimpleUploadedFile("screen.png", PNG)},
    )
    assert response.status_code == 302
    row = TicketAttachment.objects.get(ticket=ticket)
    assert (row.file_name, row.content_type, row.size_bytes) == ("screen.png", "image/png", len(PNG))
    assert _stored(_attachments_dir) == [_attachments_dir / row.stored_name]
    assert (_attachments_dir / row.stored_name).read_bytes() == PNG
    page = client.get(f"/staff/helpdesk/{ticket.pk}/").content.decode()
    assert f'href="/staff/helpdesk/attachments/{row.pk}/"' in page
    download = client.get(f"/staff/helpdesk/attachments/{row.pk}/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == PNG
    assert download["Content-Type"] == "image/png" and download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]
    assert AuditEvent.objects.get(action="ticket.commented").after["attachments"] == [row.pk]


def test_a_file_above_the_limit_is_a_413_with_a_field_error_and_nothing_is_saved(
    ticket, support, client_of, small_limit, _attachments_dir
):
    comments = TicketComment.objects.count()
    response = client_of(support).post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {"text": "Лог", "visibility": "public", "attachment": SimpleUploadedFile("big.png", PNG + bytes(1024))},
    )
    assert response.status_code == 413
    assert "larger than 0.0009765625 MB" not in response.content.decode()  # the limit reads as a number of MB
    assert "big.png is larger than" in response.content.decode()
    assert TicketComment.objects.count() == comments
    assert not TicketAttachment.objects.exists() and _stored(_attachments_dir) == []
    assert Ticket.objects.get(pk=ticket.pk).first_response_at is None  # the reply did not count as an answer


def test_the_size_is_counted_from_the_bytes_not_from_what_the_upload_claims(ticket, support, small_limit):
    lying = Upload(name="big.txt", file=io.BytesIO(b"a" * 5000), size=10)
    with pytest.raises(ValidationError) as refused:
        actions.do_comment_ticket(ticket, text="Лог", acting_user=support, uploads=[lying])
    assert refused.value.error_dict["attachment"][0].code == "attachment_too_large"
    assert not TicketAttachment.objects.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("photo.png", ELF),  # a program renamed as a picture
        ("invoice.exe", PNG),  # a picture named as a program
        ("page.pdf", b"<html><script>alert(1)</script></html>"),  # text that says it is a PDF
        ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
    ],
)
def test_a_file_of_a_refused_type_is_a_422_and_nothing_is_saved(
    ticket, support, client_of, name, content, _attachments_dir
):
    comments = TicketComment.objects.count()
    response = client_of(support).post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {"text": "Файл", "visibility": "public", "attachment": SimpleUploadedFile(name, content)},
    )
    assert response.status_code == 422
    assert "only images (PNG, JPEG, GIF, WebP), PDF and text files" in response.content.decode()
    assert TicketComment.objects.count() == comments
    assert not TicketAttachment.objects.exists() and _stored(_attachments_dir) == []


def test_a_failure_after_the_file_was_written_removes_the_file(ticket, support, _attachments_dir, monkeypatch):
    from abonent.helpdesk import models

    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(models.TicketAttachment.objects, "create", broken)
    with pytest.raises(RuntimeError):
        actions.do_comment_ticket(ticket, text="Файл", acting_user=support, uploads=[Upload("a.pdf", io.BytesIO(PDF))])
    assert _stored(_attachments_dir) == []


def test_staff_of_another_branch_get_a_404_for_the_file_and_so_does_a_role_without_requests(
    ticket, support, make_staff, other_branch, client_of, branch
):
    comment = actions.do_comment_ticket(
        ticket, text="Схема", acting_user=support, uploads=[Upload("scheme.pdf", io.BytesIO(PDF))]
    )
    row = comment.attachments.get()
    elsewhere = make_staff(Role.SUPPORT, username="klin", branches=[other_branch])
    assert client_of(elsewhere).get(f"/staff/helpdesk/attachments/{row.pk}/").status_code == 404
    here = make_staff(Role.SUPPORT, username="tver", branches=[branch])
    assert client_of(here).get(f"/staff/helpdesk/attachments/{row.pk}/").status_code == 200
    assert Client().get(f"/staff/helpdesk/attachments/{row.pk}/").status_code == 302  # to the login


def test_the_portal_sends_a_file_with_a_new_request_and_reads_it_back(customer, _attachments_dir):
    client = _portal(customer)
    response = client.post(
        "/my/requests/",
        {
            "category": "no_connection",
            "subject": "Роутер мигает",
            "text": "Фото индикаторов",
            "attachment": SimpleUploadedFile("router.jpg", b"\xff\xd8\xff\xe0" + bytes(300)),
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.get(subscriber=customer)
    row = TicketAttachment.objects.get(ticket=ticket)
    assert row.content_type == "image/jpeg" and row.comment.by_subscriber
    page = client.get(f"/my/requests/{ticket.pk}/").content.decode()
    link = f"/my/requests/{ticket.pk}/files/{row.pk}/"
    assert f'href="{link}"' in page
    assert client.get(link).status_code == 200


def test_the_portal_refuses_a_file_above_the_limit_with_nothing_saved(customer, small_limit, _attachments_dir):
    response = _portal(customer).post(
        "/my/requests/",
        {
            "category": "no_connection",
            "subject": "Роутер мигает",
            "text": "Фото",
            "attachment": SimpleUploadedFile("router.png", PNG + bytes(2000)),
        },
    )
    assert response.status_code == 413
    assert "router.png is larger than" in response.content.decode()
    assert not Ticket.objects.exists() and _stored(_attachments_dir) == []


def test_the_portal_cannot_attach_to_or_read_another_subscribers_ticket(
    make_subscriber, customer, support, _attachments_dir
):
    stranger = make_subscriber(last_name="Петров", phone="+79161110000")
    theirs = actions.do_open_ticket(
        stranger,
        actions.TicketData(category="billing", subject="Счёт", text="Вопрос"),
        source=TicketSource.PORTAL,
        acting_user=None,
    )
    comment = actions.do_comment_ticket(
        theirs, text="Акт", acting_user=support, uploads=[Upload("act.pdf", io.BytesIO(PDF))]
    )
    row = comment.attachments.get()
    client = _portal(customer)
    response = client.post(
        f"/my/requests/{theirs.pk}/", {"text": "Моё", "attachment": SimpleUploadedFile("x.png", PNG)}
    )
    assert response.status_code == 404
    assert client.get(f"/my/requests/{theirs.pk}/files/{row.pk}/").status_code == 404
    assert TicketAttachment.objects.count() == 1 and len(_stored(_attachments_dir)) == 1
    assert theirs.comments.count() == 2


def test_the_portal_never_serves_a_file_of_an_internal_note(ticket, customer, support):
    note = actions.do_comment_ticket(
        ticket,
        text="Внутреннее",
        is_public=False,
        acting_user=support,
        uploads=[Upload("internal.txt", io.BytesIO(b"password: hunter2\n"))],
    )
    row = note.attachments.get()
    client = _portal(customer)
    assert client.get(f"/my/requests/{ticket.pk}/files/{row.pk}/").status_code == 404
    assert "internal.txt" not in client.get(f"/my/requests/{ticket.pk}/").content.decode()


def test_a_request_for_a_foreign_subscriber_from_the_portal_is_refused_and_logged(make_subscriber, customer, caplog):
    stranger = make_subscriber(last_name="Петров", phone="+79161110000")
    client = _portal(customer)
    form = {"category": "no_connection", "subject": "Чужая заявка", "text": "От имени соседа"}
    for field, value in [("subscriber", stranger.pk), ("account_number", stranger.account_number)]:
        response = client.post("/my/requests/", {**form, field: value})
        assert response.status_code == 422
        assert "A request can be opened only for your own account." in response.content.decode()
    assert not Ticket.objects.exists()
    assert "posted a request naming another subscriber" in caplog.text
    # Naming oneself is no forgery: the request is opened, for the signed-in subscriber.
    assert client.post("/my/requests/", {**form, "subscriber": customer.pk}).status_code == 302
    assert list(Ticket.objects.values_list("subscriber_id", flat=True)) == [customer.pk]


def test_a_portal_reply_with_a_file_above_the_limit_is_a_413_and_nothing_is_saved(
    ticket, customer, small_limit, _attachments_dir
):
    comments = ticket.comments.count()
    response = _portal(customer).post(
        f"/my/requests/{ticket.pk}/",
        {"text": "Вот лог", "attachment": SimpleUploadedFile("router.log", b"line\n" * 1000)},
    )
    assert response.status_code == 413
    assert "router.log is larger than" in response.content.decode()
    assert ticket.comments.count() == comments
    assert not TicketAttachment.objects.exists() and _stored(_attachments_dir) == []
