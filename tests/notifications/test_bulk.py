"""Bulk messages: the preview's counts, confirming (audited, not twice), expansion in chunks at the rate,
idempotent reruns, advertising only with consent, cancelling, branch limits, permissions."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.notifications import actions
from abonent.notifications.bulk import expand_bulk, expand_bulks
from abonent.notifications.models import BulkMessage, BulkStatus, Message, MessageStatus
from abonent.staff.permissions import Role
from abonent.subscribers.models import SubscriberGroup

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def group(db):
    return SubscriberGroup.objects.create(name="Дом на Ленина, 5")


@pytest.fixture
def audience(make_subscriber, group):
    """Five in the group: four with a phone (one of them agreed to advertising), one without any."""
    people = [make_subscriber(phone=f"+7916123450{i}", last_name=f"Иванов{i}") for i in range(4)]
    people.append(make_subscriber(phone="", last_name="Безтелефонов"))
    for person in people:
        person.groups.add(group)
    type(people[0]).objects.filter(pk=people[1].pk).update(consent_marketing=True)
    make_subscriber(phone="+79161239999")  # not in the group
    return people


def form(group, **extra):
    return {
        "target": f"group:{group.pk}",
        "channel": "sms",
        "subject": "",
        "body": "{name}, 8 декабря с 2:00 до 4:00 работы на сети.",
        "per_minute": "2",
        **extra,
    }


def test_the_preview_counts_who_gets_it_and_renders_a_sample(operator_client, audience, group):
    answer = operator_client.post("/staff/notifications/bulk/new/", {**form(group), "step": "preview"})
    assert answer.status_code == 200
    reach = answer.context["preview"]["reach"]
    assert (reach.total, reach.will_send, reach.no_address, reach.no_consent) == (5, 4, 1, 0)
    sample = answer.context["preview"]["sample"]
    assert sample["body"] == f"{audience[0].display_name}, 8 декабря с 2:00 до 4:00 работы на сети."
    assert sample["sms"].unicode and sample["sms"].parts == 1
    assert not BulkMessage.objects.exists()
    advertising = operator_client.post(
        "/staff/notifications/bulk/new/", {**form(group), "marketing": "on", "step": "preview"}
    )
    reach = advertising.context["preview"]["reach"]
    assert (reach.will_send, reach.no_consent) == (1, 3)


def test_a_bad_placeholder_or_rate_is_a_field_error(operator_client, audience, group):
    answer = operator_client.post(
        "/staff/notifications/bulk/new/", {**form(group, body="{balance} ₽", per_minute="0"), "step": "confirm"}
    )
    assert answer.status_code == 422
    assert "{balance}" in answer.context["form"].errors["body"][0]
    assert answer.context["form"].errors["per_minute"]
    assert not BulkMessage.objects.exists()


def test_confirming_creates_it_once_audited_and_expansion_is_throttled_and_idempotent(
    operator_client, operator, audience, group
):
    with clock.travel_to(T0):
        answer = operator_client.post("/staff/notifications/bulk/new/", {**form(group), "step": "confirm"})
        assert answer.status_code == 302
        again = operator_client.post("/staff/notifications/bulk/new/", {**form(group), "step": "confirm"})
        assert again.status_code == 422 and "few minutes ago" in str(again.context["form"].non_field_errors())
    bulk = BulkMessage.objects.get()
    assert (bulk.recipients, bulk.per_minute, bulk.created_by, bulk.status) == (5, 2, operator, BulkStatus.QUEUED)
    assert AuditEvent.objects.filter(action="notifications.bulk_created", object_id=str(bulk.pk)).count() == 1
    with clock.travel_to(T0 + dt.timedelta(seconds=30)):
        assert expand_bulk(bulk.pk, chunk=2) == 5
    rows = list(Message.objects.filter(bulk=bulk).order_by("subscriber_id"))
    queued = [m for m in rows if m.status == MessageStatus.QUEUED]
    # Two a minute: 30 s apart, from the moment the expansion ran (after the bulk was confirmed).
    start = T0 + dt.timedelta(seconds=30)
    assert [m.next_attempt_at for m in queued] == [start + dt.timedelta(seconds=30 * i) for i in range(4)]
    assert [m.dedup_key for m in queued] == [f"bulk:{bulk.pk}:{p.pk}:sms" for p in audience[:4]]
    assert queued[0].body == f"{audience[0].display_name}, 8 декабря с 2:00 до 4:00 работы на сети."
    skipped = [m for m in rows if m.status == MessageStatus.SKIPPED]
    assert [(m.subscriber_id, m.error) for m in skipped] == [(audience[4].pk, "no_address")]
    # The job again (next minute, a second worker): nothing new, and done only once nothing is queued.
    with clock.travel_to(T0 + dt.timedelta(minutes=1)):
        assert expand_bulk(bulk.pk) == 0
        assert expand_bulks() == {bulk.pk: 0}
    assert Message.objects.filter(bulk=bulk).count() == 5
    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.SENDING
    Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED).update(status=MessageStatus.SENT)
    expand_bulks()
    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.DONE


def test_an_interrupted_expansion_resumes_at_the_rate(operator, audience, group):
    data = actions.BulkData("group", group.pk, "sms", "", "Работы на сети", False, 60)
    with clock.travel_to(T0):
        bulk = actions.do_create_bulk(data, recipients=5, acting_user=operator)
        # One chunk expanded, then the worker died; the next run, a minute later, goes on from there.
        expand_bulk_chunks(bulk, 2)
    with clock.travel_to(T0 + dt.timedelta(seconds=1)):
        expand_bulk(bulk.pk, chunk=2)
    due = list(
        Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED)
        .order_by("subscriber_id")
        .values_list("next_attempt_at", flat=True)
    )
    assert due == [T0 + dt.timedelta(seconds=i) for i in range(4)]


def expand_bulk_chunks(bulk, size):
    # What one chunk of expand_bulk writes, then stop: as a crash between chunks leaves it.
    from abonent.notifications import bulk as module

    original = module.notify_many
    calls = []

    def once(notices):
        if calls:
            raise RuntimeError("worker died")
        calls.append(1)
        return original(notices)

    module.notify_many = once
    try:
        with pytest.raises(RuntimeError):
            expand_bulk(bulk.pk, chunk=size)
    finally:
        module.notify_many = original


def test_advertising_goes_only_to_those_who_agreed(operator, audience, group):
    data = actions.BulkData("group", group.pk, "sms", "", "Скидка 20 % на роутеры", True, 600)
    bulk = actions.do_create_bulk(data, recipients=5, acting_user=operator)
    expand_bulk(bulk.pk)
    by_status = {}
    for m in Message.objects.filter(bulk=bulk):
        by_status.setdefault((m.status, m.error), []).append(m.subscriber_id)
    assert by_status[(MessageStatus.QUEUED, "")] == [audience[1].pk]
    assert sorted(by_status[(MessageStatus.SKIPPED, "no_consent")]) == [audience[i].pk for i in (0, 2, 3)]
    assert by_status[(MessageStatus.SKIPPED, "no_address")] == [audience[4].pk]
    assert all(m.marketing for m in Message.objects.filter(bulk=bulk))


def test_cancel_stops_what_is_not_sent(operator_client, operator, audience, group):
    data = actions.BulkData("group", group.pk, "sms", "", "Работы на сети", False, 1)
    bulk = actions.do_create_bulk(data, recipients=5, acting_user=operator)
    expand_bulk(bulk.pk, chunk=2)
    first = Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED).order_by("id").first()
    Message.objects.filter(pk=first.pk).update(status=MessageStatus.SENT)
    answer = operator_client.post(f"/staff/notifications/bulk/{bulk.pk}/cancel/")
    assert answer.status_code == 302
    counts = {s: Message.objects.filter(bulk=bulk, status=s).count() for s in MessageStatus.values}
    assert (
        counts[MessageStatus.SENT] == 1 and counts[MessageStatus.CANCELLED] == 3 and counts[MessageStatus.QUEUED] == 0
    )
    assert expand_bulk(bulk.pk) == 0
    assert AuditEvent.objects.get(action="notifications.bulk_cancelled").after["cancelled"] == 3
    page = operator_client.get("/staff/notifications/bulk/").content.decode()
    row = page.split(f'data-bulk="{bulk.pk}"')[1].split("</tr>")[0]
    assert 'data-count="sent">1<' in row and 'data-count="queued">0<' in row


def test_a_branch_limited_operator_reaches_only_their_branch(
    make_staff, make_subscriber, client_of, branch, other_branch, group
):
    limited = make_staff(Role.OPERATOR, branches=[branch])
    for b in (branch, other_branch, other_branch):
        make_subscriber(branch_obj=b).groups.add(group)
    answer = client_of(limited).post("/staff/notifications/bulk/new/", {**form(group), "step": "preview"})
    assert answer.context["preview"]["reach"].total == 1
    bulk = actions.do_create_bulk(
        actions.BulkData("group", group.pk, "sms", "", "Работы", False, 600), recipients=1, acting_user=limited
    )
    expand_bulk(bulk.pk)
    assert Message.objects.filter(bulk=bulk).count() == 1


def test_a_cashier_cannot_send_bulk_messages(cashier, client_of, audience, group):
    client = client_of(cashier)
    assert client.get("/staff/notifications/bulk/").status_code == 200
    assert client.get("/staff/notifications/bulk/new/").status_code == 403
    assert client.post("/staff/notifications/bulk/new/", {**form(group), "step": "confirm"}).status_code == 403
    assert not BulkMessage.objects.exists()
