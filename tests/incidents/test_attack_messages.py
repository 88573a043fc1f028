"""Attack review of the message to the affected: its "once per text" key must not swallow a message another branch's
operator sends (their subscribers would never get it), nor let a subject the channel drops make the same SMS twice."""

import pytest

from abonent.helpdesk.incidents import actions
from abonent.notifications.bulk import expand_bulk
from abonent.notifications.models import BulkMessage, Message
from abonent.staff.permissions import Role

from .conftest import LENINA_1_12

pytestmark = pytest.mark.django_db
TEXT = "Авария на ул. Ленина, 1–12: восстановим к 18:00. Звонить не нужно."


def _received(subscriber) -> list[str]:
    return list(Message.objects.filter(subscriber=subscriber).values_list("body", flat=True))


def test_the_same_text_from_another_branchs_operator_reaches_their_subscribers(
    customer, open_incident, make_staff, branch, other_branch
):
    # Given an incident over two branches' subscribers, and an operator in each branch
    mine, theirs = customer("5"), customer("6", branch_obj=other_branch)
    here, there = make_staff(Role.OPERATOR, branches=[branch]), make_staff(Role.OPERATOR, branches=[other_branch])
    incident = open_incident(areas=[LENINA_1_12])

    # When each sends the same (template) text to the affected, and the worker expands what was queued
    first, _ = actions.do_message_incident(incident, channel="sms", subject="", body=TEXT, acting_user=here)
    second, created = actions.do_message_incident(incident, channel="sms", subject="", body=TEXT, acting_user=there)
    for bulk_id in BulkMessage.objects.values_list("pk", flat=True):
        expand_bulk(bulk_id)

    # Then each branch's subscriber got it, once: the second operator's press was not "sent already"
    assert created is True and second.pk != first.pk
    assert (_received(mine), _received(theirs)) == ([TEXT], [TEXT])


def test_the_same_operator_in_the_same_branch_is_still_once(customer, open_incident, make_staff, branch):
    # A defence that holds (kept with the fix above): one scope, one text, pressed twice, is one message.
    mine = customer("5")
    here = make_staff(Role.OPERATOR, branches=[branch])
    incident = open_incident(areas=[LENINA_1_12])
    first, _ = actions.do_message_incident(incident, channel="sms", subject="", body=TEXT, acting_user=here)
    again, created = actions.do_message_incident(
        incident, channel="sms", subject="", body=f" {TEXT}\n", acting_user=here
    )
    expand_bulk(first.bulk_id)
    assert (created, again.pk, BulkMessage.objects.count(), _received(mine)) == (False, first.pk, 1, [TEXT])


def test_an_sms_with_a_subject_it_drops_is_the_same_sms(customer, open_incident, admin, make_staff):
    # Given an affected subscriber and two administrators (the bulk's own double-click guard is per author)
    mine = customer("5")
    other_admin = make_staff(Role.ADMIN)
    incident = open_incident(areas=[LENINA_1_12])

    # When the same SMS text is sent once with a subject typed in (an SMS has none) and once without
    first, _ = actions.do_message_incident(incident, channel="sms", subject="Авария", body=TEXT, acting_user=admin)
    second, created = actions.do_message_incident(
        incident, channel="sms", subject="", body=TEXT, acting_user=other_admin
    )
    for bulk_id in BulkMessage.objects.values_list("pk", flat=True):
        expand_bulk(bulk_id)

    # Then the subscriber gets the SMS once: the subject was no part of it
    assert (created, second.pk) == (False, first.pk)
    assert _received(mine) == [TEXT]


def test_a_branch_limited_operators_message_counts_their_recipients_only(
    customer, open_incident, make_staff, branch, other_branch
):
    # The bulk message's recipient count (its list, its audit row) is whom it will reach: their branch's affected,
    # not the whole incident's (another branch's subscribers are none of theirs, counted or not).
    customer("5"), customer("6", branch_obj=other_branch), customer("7", branch_obj=other_branch)
    here = make_staff(Role.OPERATOR, branches=[branch])
    incident = open_incident(areas=[LENINA_1_12])
    message, _ = actions.do_message_incident(incident, channel="sms", subject="", body=TEXT, acting_user=here)
    assert incident.affected_count == 3
    assert message.bulk.recipients == 1


def test_a_branch_operator_after_an_unlimited_one_sends_nothing_more(
    customer, open_incident, admin, make_staff, branch
):
    # The message to everyone reached their branch already: the same text from its operator is "sent already".
    mine = customer("5")
    here = make_staff(Role.OPERATOR, branches=[branch])
    incident = open_incident(areas=[LENINA_1_12])
    first, _ = actions.do_message_incident(incident, channel="sms", subject="", body=TEXT, acting_user=admin)
    again, created = actions.do_message_incident(incident, channel="sms", subject="", body=TEXT, acting_user=here)
    for bulk_id in BulkMessage.objects.values_list("pk", flat=True):
        expand_bulk(bulk_id)
    assert (created, again.pk, _received(mine)) == (False, first.pk, [TEXT])
