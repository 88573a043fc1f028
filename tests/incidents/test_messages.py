"""One message to all the affected: pressed twice it is one bulk message and one message per subscriber; a
branch-limited operator reaches their branch only."""

import pytest
from django.core.exceptions import PermissionDenied

from abonent.core.models import AuditEvent
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.models import IncidentMessage
from abonent.notifications.bulk import expand_bulk
from abonent.notifications.models import BulkMessage, Message
from abonent.staff.permissions import Role

from .conftest import LENINA_1_12

pytestmark = pytest.mark.django_db
TEXT = "Авария на ул. Ленина, 1–12: восстановим к 18:00. Звонить не нужно."


def _send(incident, user, body=TEXT):
    return actions.do_message_incident(incident, channel="sms", subject="", body=body, acting_user=user)


def test_pressed_twice_each_affected_gets_it_once(customer, open_incident, admin):
    # Given an incident affecting two subscribers, and one subscriber not affected
    a, b, outside = customer("5"), customer("6"), customer("40")
    incident = open_incident(areas=[LENINA_1_12])

    # When the operator presses "Send" twice with the same text and the worker expands it, twice too
    first, created = _send(incident, admin)
    second, created_again = _send(incident, admin)
    expand_bulk(first.bulk_id)
    expand_bulk(first.bulk_id)

    # Then there is one incident message, one bulk, and one SMS for each affected subscriber
    assert (created, created_again, second.pk) == (True, False, first.pk)
    assert IncidentMessage.objects.count() == 1 and BulkMessage.objects.count() == 1
    sent = sorted(Message.objects.filter(bulk_id=first.bulk_id).values_list("subscriber_id", flat=True))
    assert sent == sorted([a.pk, b.pk])
    assert outside.pk not in sent
    assert Message.objects.get(subscriber=a).body == TEXT
    assert AuditEvent.objects.filter(action="incident.messaged").count() == 1


def test_another_text_is_another_message(customer, open_incident, admin):
    customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    _send(incident, admin)
    update, created = _send(incident, admin, body="Работы продлятся до 20:00.")
    expand_bulk(update.bulk_id)
    assert created and IncidentMessage.objects.count() == 2
    assert Message.objects.filter(bulk_id=update.bulk_id).count() == 1


def test_a_branch_limited_operator_reaches_their_branch_only(customer, open_incident, make_staff, branch, other_branch):
    mine, theirs = customer("5"), customer("6", branch_obj=other_branch)
    limited = make_staff(Role.OPERATOR, branches=[branch])
    incident = open_incident(areas=[LENINA_1_12], user=limited)
    assert incident.affected_count == 2  # the incident itself is the network's, not a branch's
    message, _created = _send(incident, limited)
    expand_bulk(message.bulk_id)
    assert list(Message.objects.filter(bulk_id=message.bulk_id).values_list("subscriber_id", flat=True)) == [mine.pk]
    assert theirs.pk not in set(Message.objects.values_list("subscriber_id", flat=True))


def test_an_engineer_without_bulk_messages_may_not_send(customer, open_incident, make_staff):
    customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with pytest.raises(PermissionDenied):
        _send(incident, make_staff(Role.ENGINEER))
    assert (IncidentMessage.objects.count(), BulkMessage.objects.count()) == (0, 0)
