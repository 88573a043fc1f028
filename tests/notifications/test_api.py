"""API: a subscriber's notification log (branch-scoped, by cursor) and their notification preferences."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.notifications.models import Event, Message, Preference
from abonent.notifications.queueing import notify
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def subscriber(make_subscriber):
    subscriber = make_subscriber()
    for day in range(3):
        with clock.travel_to(T0 + dt.timedelta(days=day)):
            notify(subscriber.pk, Event.RESTORED, key=f"restored:{day}", context={"balance": f"{day}.00"})
    return subscriber


def test_the_log_newest_first_page_by_page(api, subscriber):
    first = api.get(f"/api/v1/subscribers/{subscriber.pk}/notifications?limit=2")
    assert first.status_code == 200
    body = first.json()
    assert [i["created_at"][:10] for i in body["items"]] == ["2026-12-09", "2026-12-08"]
    assert body["items"][0]["address"] == "+7916•••4567" and body["items"][0]["status"] == "queued"
    rest = api.get(f"/api/v1/subscribers/{subscriber.pk}/notifications?limit=2&cursor={body['next_cursor']}").json()
    assert [i["created_at"][:10] for i in rest["items"]] == ["2026-12-07"] and rest["next_cursor"] is None
    assert api.get(f"/api/v1/subscribers/{subscriber.pk}/notifications?status=sent").json()["items"] == []


def test_a_skipped_message_says_why(api, make_subscriber):
    nobody = make_subscriber(phone="")
    notify(nobody.pk, Event.RESTORED, key="r", context={})
    item = api.get(f"/api/v1/subscribers/{nobody.pk}/notifications").json()["items"][0]
    assert (item["status"], item["error"], item["channel"]) == ("skipped", "no_address", "")
    assert item["error_text"] == "The subscriber has no address for any channel."


def test_bad_filters_and_cursors_are_422_not_500(api, subscriber):
    answer = api.get(f"/api/v1/subscribers/{subscriber.pk}/notifications?cursor=garbage")
    assert answer.status_code == 422 and answer.json()["error"]["fields"][0]["code"] == "cursor_invalid"
    assert api.get(f"/api/v1/subscribers/{subscriber.pk}/notifications?status=lost").status_code == 422


def test_the_log_is_branch_scoped_and_needs_the_permission(api_of, subscriber, other_branch):
    assert (
        api_of(Role.OPERATOR, branches=[other_branch])
        .get(f"/api/v1/subscribers/{subscriber.pk}/notifications")
        .status_code
        == 404
    )
    assert api_of(Role.ENGINEER).get(f"/api/v1/subscribers/{subscriber.pk}/notifications").status_code == 403
    assert api_of(Role.CASHIER).get(f"/api/v1/subscribers/{subscriber.pk}/notifications").status_code == 200


def test_preferences_default_then_set_whole_and_audited(api, subscriber):
    url = f"/api/v1/subscribers/{subscriber.pk}/notification-preferences"
    default = api.get(url).json()
    assert default == {
        "email": True,
        "sms": True,
        "telegram": True,
        "language": "",
        "time_zone": "",
        "quiet_from": None,
        "quiet_to": None,
        "updated_at": None,
    }
    wanted = {"sms": False, "language": "ru", "time_zone": "Europe/Samara", "quiet_from": "23:00", "quiet_to": "07:30"}
    answer = api.put(url, wanted, headers={"Idempotency-Key": "prefs-1"})
    assert answer.status_code == 200
    assert answer.json()["sms"] is False and answer.json()["quiet_to"] == "07:30:00"
    again = api.put(url, wanted, headers={"Idempotency-Key": "prefs-1"})
    assert again.json() == answer.json()
    assert AuditEvent.objects.filter(action="notifications.preferences_updated").count() == 1
    # Without a key (it is not money) and the whole settings each time: what is left out goes back to its default.
    assert api.put(url, {"sms": False}).status_code == 200
    preference = Preference.objects.get()
    assert (preference.sms, preference.language, preference.quiet_from) == (False, "", None)


def test_bad_preferences_are_422_with_field_codes(api, subscriber):
    url = f"/api/v1/subscribers/{subscriber.pk}/notification-preferences"
    answer = api.put(url, {"time_zone": "Mars/Olympus", "language": "de", "quiet_from": "22:00"})
    assert answer.status_code == 422
    codes = {f["field"]: f["code"] for f in answer.json()["error"]["fields"]}
    assert codes == {"time_zone": "time_zone_invalid", "language": "language_invalid", "quiet_to": "quiet_hours_half"}
    assert not Preference.objects.exists()


def test_a_cashier_reads_preferences_but_cannot_change_them(api_of, subscriber):
    cashier = api_of(Role.CASHIER)
    url = f"/api/v1/subscribers/{subscriber.pk}/notification-preferences"
    assert cashier.get(url).status_code == 200
    assert cashier.put(url, {"sms": False}).status_code == 403
    assert not Preference.objects.exists()
    assert Message.objects.count() == 3
