"""The outbox, a subscriber's log and the card panel (last messages, preferences, Telegram chats), as operator,
admin and cashier."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.notifications.models import Event, Message, MessageStatus, Preference, TelegramChat
from abonent.notifications.queueing import notify
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def told(make_subscriber, with_email):
    """A subscriber with a phone and an e-mail, told of a payment; the SMS failed for good."""
    subscriber = with_email(make_subscriber())
    with clock.travel_to(T0):
        notify(subscriber.pk, Event.RESTORED, key="restored:1", context={"balance": "12.00"})
    Message.objects.filter(channel="sms").update(
        status=MessageStatus.FAILED, attempts=8, error="timeout", error_detail="read timed out", finished_at=T0
    )
    return subscriber


def test_the_outbox_shows_counts_and_filters(operator_client, told):
    page = operator_client.get("/staff/notifications/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-status="failed">Failed: <strong>1</strong>' in html
    assert 'data-status="queued">Queued: <strong>1</strong>' in html
    assert html.count("data-message=") == 2
    only_failed = operator_client.get("/staff/notifications/?status=failed&channel=sms").content.decode()
    assert (
        only_failed.count("data-message=") == 1
        and "The provider did not answer in time. (read timed out)" in only_failed
    )
    # Masked: enough to tell which address, not to copy it.
    assert "+7916•••4567" in html and "+79161234567" not in html and "iv•••@example.ru" in html
    nothing = operator_client.get("/staff/notifications/?date_from=2026-12-08").content.decode()
    assert "data-message=" not in nothing


def test_retry_now_queues_a_failed_message_again_audited(operator_client, told):
    failed = Message.objects.get(status=MessageStatus.FAILED)
    queued = Message.objects.get(status=MessageStatus.QUEUED)
    with clock.travel_to(T0 + dt.timedelta(hours=1)):
        assert operator_client.post(f"/staff/notifications/messages/{failed.pk}/retry/").status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (
        MessageStatus.QUEUED,
        0,
        T0 + dt.timedelta(hours=1),
    )
    assert AuditEvent.objects.get(action="notifications.message_retried").subscriber_id == told.pk
    # Only a failed one: a queued message is left as it is.
    operator_client.post(f"/staff/notifications/messages/{queued.pk}/retry/")
    assert AuditEvent.objects.filter(action="notifications.message_retried").count() == 1


def test_a_cashier_sees_the_outbox_but_cannot_retry(cashier, client_of, told):
    client = client_of(cashier)
    assert client.get("/staff/notifications/").status_code == 200
    failed = Message.objects.get(status=MessageStatus.FAILED)
    assert client.post(f"/staff/notifications/messages/{failed.pk}/retry/").status_code == 403
    failed.refresh_from_db()
    assert failed.status == MessageStatus.FAILED


def test_an_engineer_without_the_permission_is_refused(make_staff, client_of, told):
    client = client_of(make_staff(Role.ENGINEER))
    assert client.get("/staff/notifications/").status_code == 403
    assert client.get(f"/staff/notifications/subscriber/{told.pk}/").status_code == 403


def test_a_subscriber_of_another_branch_is_not_found(make_staff, client_of, other_branch, told):
    limited = client_of(make_staff(Role.OPERATOR, branches=[other_branch]))
    assert limited.get(f"/staff/notifications/subscriber/{told.pk}/").status_code == 404
    assert "data-message=" not in limited.get("/staff/notifications/").content.decode()
    failed = Message.objects.get(status=MessageStatus.FAILED)
    assert limited.post(f"/staff/notifications/messages/{failed.pk}/retry/").status_code == 404


def test_the_card_panel_shows_the_last_messages_chats_and_the_log_link(operator_client, told):
    TelegramChat.objects.create(subscriber=told, chat_id=123456789, username="ivanov", linked_at=T0)
    page = operator_client.get(f"/staff/subscribers/{told.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    panel = html.split('id="panel-notifications"')[1].split("</section>")[0]
    assert panel.count("data-message=") == 2 and "The provider did not answer in time." in panel
    assert f"/staff/notifications/subscriber/{told.pk}/" in panel
    assert "@ivanov" in panel and 'id="prefs-email"' in panel


def test_preferences_are_saved_from_the_card_and_audited(operator_client, told):
    answer = operator_client.post(
        f"/staff/notifications/subscriber/{told.pk}/preferences/",
        {
            "email": "on",
            "language": "ru",
            "time_zone": "Asia/Yekaterinburg",
            "quiet_from": "22:00",
            "quiet_to": "08:00",
        },
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200 and "Preferences saved." in answer.content.decode()
    preference = Preference.objects.get(subscriber=told)
    assert (preference.email, preference.sms, preference.telegram) == (True, False, False)
    assert (preference.language, preference.time_zone) == ("ru", "Asia/Yekaterinburg")
    assert (preference.quiet_from, preference.quiet_to) == (dt.time(22), dt.time(8))
    event = AuditEvent.objects.get(action="notifications.preferences_updated")
    assert event.subscriber_id == told.pk and event.after["sms"] is False


def test_bad_preferences_are_field_errors_and_nothing_is_saved(operator_client, told):
    answer = operator_client.post(
        f"/staff/notifications/subscriber/{told.pk}/preferences/",
        {"email": "on", "time_zone": "Mars/Olympus", "quiet_from": "22:00"},
        headers={"HX-Request": "true"},
    )
    html = answer.content.decode()
    assert answer.status_code == 422 and "Unknown time zone" in html and "Give both ends" in html
    assert not Preference.objects.exists()


def test_a_cashier_sees_the_panel_but_cannot_change_preferences(cashier, client_of, told):
    client = client_of(cashier)
    html = client.get(f"/staff/subscribers/{told.pk}/").content.decode()
    assert 'id="panel-notifications"' in html and 'id="prefs-email"' not in html
    answer = client.post(f"/staff/notifications/subscriber/{told.pk}/preferences/", {"email": "on"})
    assert answer.status_code == 403 and not Preference.objects.exists()
