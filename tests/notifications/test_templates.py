"""Templates console: the matrix, editing with placeholders checked, the live preview, reset; who may do what."""

import pytest

from abonent.core.models import AuditEvent
from abonent.notifications.calculations import sms_length
from abonent.notifications.models import Event, Message, Template
from abonent.notifications.queueing import notify

pytestmark = pytest.mark.django_db

EDIT = "/staff/notifications/templates/restricted/sms/en/"


def test_the_list_shows_every_event_channel_and_language_and_which_text_is_in_use(admin_client, admin):
    from abonent.notifications.actions import do_save_template

    do_save_template("restricted", "sms", "en", subject="", body="Pay {amount_due}", acting_user=admin)
    page = admin_client.get("/staff/notifications/templates/")
    html = page.content.decode()
    assert page.status_code == 200
    # 18 events (a bulk message has no template; the portal's login and contact codes have) × 3 channels × 2
    # languages.
    assert html.count("data-template=") == 18 * 3 * 2
    row = html.split('data-template="restricted/sms/en"')[1].split("</tr>")[0]
    assert "custom" in row
    other = html.split('data-template="restricted/sms/ru"')[1].split("</tr>")[0]
    assert "built-in" in other


def test_a_saved_template_is_used_for_new_messages_and_audited(admin_client, admin, make_subscriber):
    answer = admin_client.post(EDIT, {"body": "{provider}: pay {amount_due} for {account}"})
    assert answer.status_code == 302
    template = Template.objects.get(event="restricted", channel="sms", language="en")
    assert template.is_active and template.updated_by == admin
    event = AuditEvent.objects.get(action="notifications.template_saved")
    assert event.after["body"] == "{provider}: pay {amount_due} for {account}"
    subscriber = make_subscriber()
    notify(subscriber.pk, Event.RESTRICTED, key="r:1", context={"amount_due": "770.00"}, channels=("sms",))
    assert Message.objects.get().body == f"Abonent ISP: pay 770.00 for {subscriber.account_number}"


def test_an_unknown_placeholder_is_a_field_error_listing_the_allowed_ones_not_a_500(admin_client):
    answer = admin_client.post(EDIT, {"body": "Pay {amount_due} by {tomorrow}"})
    assert answer.status_code == 422
    errors = answer.context["form"].errors["body"]
    assert "{tomorrow}" in errors[0] and "{amount_due}" in errors[0] and "{pay_link}" in errors[0]
    assert not Template.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="notifications.").exists()
    # Not a template at all: braces unbalanced, an attribute reached for.
    for body in ("Pay {amount_due", "{name.__class__}"):
        answer = admin_client.post(EDIT, {"body": body})
        assert answer.status_code == 422 and answer.context["form"].errors["body"]


def test_an_email_subject_is_checked_on_its_own_field(admin_client):
    answer = admin_client.post(
        "/staff/notifications/templates/restricted/email/ru/", {"subject": "Долг {debt}", "body": "{name}"}
    )
    assert answer.status_code == 422
    assert "{debt}" in answer.context["form"].errors["subject"][0]
    assert "body" not in answer.context["form"].errors


def test_reset_puts_the_built_in_text_back(admin_client, admin, make_subscriber):
    admin_client.post(EDIT, {"body": "Custom {account}"})
    answer = admin_client.post(EDIT + "reset/")
    assert answer.status_code == 302
    assert Template.objects.get().is_active is False
    assert AuditEvent.objects.filter(action="notifications.template_reset").count() == 1
    subscriber = make_subscriber()
    notify(subscriber.pk, Event.RESTRICTED, key="r:2", context={"amount_due": "1"}, channels=("sms",))
    assert "Custom" not in Message.objects.get().body and "access is restricted" in Message.objects.get().body


def test_the_preview_renders_sample_data_with_the_sms_length(admin_client):
    answer = admin_client.post(
        "/staff/notifications/templates/preview/",
        {"event": "restricted", "channel": "sms", "body": "{provider}: оплатите {amount_due} ₽"},
        headers={"HX-Request": "true"},
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert "Abonent ISP: оплатите 770.00 ₽" in html
    assert 'id="sms-length"' in html and "Cyrillic" in html
    bad = admin_client.post(
        "/staff/notifications/templates/preview/", {"event": "restricted", "channel": "sms", "body": "{nope}"}
    )
    assert bad.status_code == 200 and "{nope}" in bad.content.decode() and "preview-errors" in bad.content.decode()


def test_an_operator_reads_templates_but_cannot_change_them(operator_client):
    assert operator_client.get("/staff/notifications/templates/").status_code == 200
    page = operator_client.get(EDIT)
    assert page.status_code == 200 and "Save and use" not in page.content.decode()
    assert operator_client.post(EDIT, {"body": "Hacked {account}"}).status_code == 403
    assert operator_client.post(EDIT + "reset/").status_code == 403
    assert not Template.objects.exists()


def test_a_cashier_reads_and_an_anonymous_visitor_is_sent_to_log_in(cashier, client_of, client):
    assert client_of(cashier).get("/staff/notifications/templates/").status_code == 200
    assert client.get("/staff/notifications/templates/").status_code == 302
    assert client_of(cashier).post(EDIT, {"body": "x"}).status_code == 403


def test_an_unknown_event_channel_or_language_is_404(admin_client):
    for path in ("nothing/sms/en/", "restricted/fax/en/", "restricted/sms/de/", "bulk/sms/en/"):
        assert admin_client.get("/staff/notifications/templates/" + path).status_code == 404


def test_sms_parts_are_counted_as_the_sms_centre_does():
    assert (sms_length("a" * 160).parts, sms_length("a" * 161).parts) == (1, 2)
    assert sms_length("a" * 306).parts == 2 and sms_length("a" * 307).parts == 3
    assert (sms_length("я" * 70).parts, sms_length("я" * 71).parts) == (1, 2)
    assert sms_length("я" * 134).parts == 2 and sms_length("я" * 135).parts == 3
    # GSM extension characters take two septets; one Cyrillic letter makes the whole text UCS-2.
    assert sms_length("€" * 80).characters == 160 and sms_length("€" * 81).parts == 2
    assert sms_length("Pay 5 rub" + "ж").unicode is True
    assert sms_length("").parts == 0
