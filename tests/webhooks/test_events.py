"""Each domain event becomes the documented webhook event: its type, its data read fresh, valid by its JSON
Schema (docs/webhooks/), one delivery per subscribed endpoint, none for an endpoint not subscribed or inactive."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.core import clock
from abonent.dunning.actions import do_block_access
from abonent.helpdesk import actions as helpdesk
from abonent.helpdesk.models import TicketSource, TicketStatus
from abonent.integrations.webhooks import actions, events
from abonent.integrations.webhooks.models import Delivery, EventType, WebhookEvent
from abonent.payments.actions.intake import do_receive_payment
from abonent.subscribers.actions import do_close_subscriber

from .schema_check import errors, load

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def crm(admin):
    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://crm.example.net/hook", event_types=list(EventType.values)),
        acting_user=admin,
    )
    return endpoint


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run ``action`` in its own transaction, its events handled after commit, at T0."""

    def call(action, *args, **kwargs):
        with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return call


def _events(event_type):
    found = list(WebhookEvent.objects.filter(type=event_type).order_by("created_at", "key"))
    for event in found:
        assert errors(event.envelope(), load(event_type)) == []
    return found


def test_subscriber_created_and_closed(crm, run, make_subscriber, admin):
    subscriber = run(make_subscriber)
    (created,) = _events(EventType.SUBSCRIBER_CREATED)
    assert created.data["subscriber"]["account_number"] == subscriber.account_number
    assert created.data["subscriber"]["status"] == "active"
    run(do_close_subscriber, subscriber, reason="Переезд", acting_user=admin)
    (closed,) = _events(EventType.SUBSCRIBER_CHANGED)
    assert (closed.data["change"], closed.data["subscriber"]["status"]) == ("closed", "closed")
    assert closed.data["subscriber"]["closed_at"] == "2026-12-07T09:00:00Z"
    assert Delivery.objects.filter(endpoint=crm).count() == 2
    # No personal data beyond the name in the payload
    assert "passport_number" not in created.data["subscriber"]


def test_payment_received(crm, run, make_subscriber, admin):
    subscriber = run(make_subscriber)
    intake = run(
        do_receive_payment,
        channel="manual",
        external_id="crm-1",
        amount=Decimal("650.00"),
        method="manual",
        subscriber=subscriber,
        acting_user=admin,
    )
    (event,) = _events(EventType.PAYMENT_RECEIVED)
    payment = event.data["payment"]
    assert payment["id"] == intake.payment.pk
    assert (payment["amount"], payment["currency"], payment["status"]) == ("650.00", "RUB", "credited")
    assert payment["account_number"] == subscriber.account_number
    # The same payment reported again (a gateway's retried notification) is the same event, one delivery
    events.payment_received(event="payments.payment_received", payment_id=intake.payment.pk)
    assert Delivery.objects.filter(event__type=EventType.PAYMENT_RECEIVED).count() == 1


def test_access_changed(crm, run, make_subscriber, admin):
    subscriber = run(make_subscriber)
    run(do_block_access, subscriber, acting_user=admin, reason="Просьба абонента")
    (event,) = _events(EventType.ACCESS_CHANGED)
    assert (event.data["subscriber_id"], event.data["state"]) == (subscriber.pk, "blocked")
    assert event.data["since"] == "2026-12-07T09:00:00Z"


def test_ticket_created_commented_and_moved(crm, run, make_subscriber, admin):
    subscriber = run(make_subscriber)
    data = helpdesk.TicketData(category="no_connection", subject="Нет интернета", text="Не работает.")
    ticket = run(helpdesk.do_open_ticket, subscriber, data, source=TicketSource.PORTAL, acting_user=None)
    (created,) = _events(EventType.TICKET_CREATED)
    assert (created.data["ticket"]["number"], created.data["ticket"]["status"]) == (ticket.number, "new")
    comment = run(helpdesk.do_comment_ticket, ticket, text="Проверяем линию.", acting_user=admin, is_public=False)
    run(helpdesk.do_change_ticket_status, ticket, status=TicketStatus.RESOLVED, acting_user=admin)
    updated = _events(EventType.TICKET_UPDATED)
    assert len(updated) == 2
    commented = next(e for e in updated if e.data["comment"])
    assert commented.data["comment"] == {"id": comment.pk, "public": False, "author": "staff"}
    assert {e.data["ticket"]["status"] for e in updated} >= {"resolved"}


def test_plan_changed_by_handler_reads_the_plans(crm, make_plan, make_subscriber, run):
    subscriber = run(make_subscriber)
    home, fast = make_plan("home", "650.00", name="Домашний"), make_plan("fast", "900.00", name="Быстрый")
    with clock.travel_to(T0):
        events.plan_changed(
            event="subscription.plan_changed",
            subscription_id=77,
            subscriber_id=subscriber.pk,
            from_plan_id=home.pk,
            to_plan_id=fast.pk,
        )
    (event,) = _events(EventType.PLAN_CHANGED)
    assert event.data["from_plan"] == {"id": home.pk, "name": "Домашний"}
    assert event.data["to_plan"] == {"id": fast.pk, "name": "Быстрый"}
    assert event.data["effective_on"] == "2026-12-07"


def test_nothing_for_an_endpoint_not_subscribed_or_inactive(admin, run, make_subscriber):
    actions.do_create_endpoint(
        actions.EndpointData(name="Tickets only", url="https://a.example/h", event_types=[EventType.TICKET_CREATED]),
        acting_user=admin,
    )
    actions.do_create_endpoint(
        actions.EndpointData(
            name="Off", url="https://b.example/h", event_types=[EventType.SUBSCRIBER_CREATED], is_active=False
        ),
        acting_user=admin,
    )
    run(make_subscriber)
    assert Delivery.objects.count() == 0
    assert WebhookEvent.objects.count() == 0  # nobody wants it: not stored


def test_a_broken_builder_never_breaks_the_emitter(crm, run, make_subscriber, monkeypatch, caplog):
    def broken(_subscriber_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(events.payloads, "subscriber_created", broken)
    subscriber = run(make_subscriber)
    assert subscriber.pk is not None
    assert Delivery.objects.count() == 0
    assert "could not queue subscriber.created" in caplog.text


def test_a_scheduled_switch_of_the_billing_run_is_a_plan_change(crm, make_plan, make_subscriber, run):
    from django.db import transaction

    from abonent.billing.engine import PlanSwitch, plans_switched

    subscriber = run(make_subscriber)
    home, cheap = make_plan("home", "650.00", name="Домашний"), make_plan("cheap", "400.00", name="Эконом")
    switch = PlanSwitch(
        subscription_id=5,
        subscriber_id=subscriber.pk,
        from_plan_id=home.pk,
        to_plan_id=cheap.pk,
        effective_on=dt.date(2027, 1, 1),
    )
    with clock.travel_to(T0), transaction.atomic():
        plans_switched.send(sender=None, switched=[switch])
        plans_switched.send(sender=None, switched=[switch])  # a retried chunk
    (event,) = _events(EventType.PLAN_CHANGED)
    assert (event.data["to_plan"]["name"], event.data["effective_on"]) == ("Эконом", "2027-01-01")
    assert Delivery.objects.filter(event=event).count() == 1


def test_a_sweep_of_many_subscribers_is_queued_in_chunks(crm, run, make_subscriber, admin, monkeypatch):
    first, second = run(make_subscriber), run(make_subscriber, phone="+79160000001")
    run(do_block_access, first, acting_user=admin, reason="Просьба")
    run(do_block_access, second, acting_user=admin, reason="Просьба")
    WebhookEvent.objects.filter(type=EventType.ACCESS_CHANGED).delete()
    monkeypatch.setattr(events, "ACCESS_CHUNK", 1)
    events.access_changed(event="dunning.states_changed", subscriber_ids=[second.pk, first.pk, first.pk])
    assert sorted(e.data["subscriber_id"] for e in _events(EventType.ACCESS_CHANGED)) == sorted([first.pk, second.pk])


def test_a_payment_in_suspense_is_told_once_assigned(crm, run, make_subscriber, admin):
    from abonent.payments.actions.suspense import do_assign_payment

    subscriber = run(make_subscriber)
    intake = run(
        do_receive_payment,
        channel="manual",
        external_id="unknown-1",
        amount=Decimal("300.00"),
        method="manual",
        account_ref="no such account",
        acting_user=admin,
    )
    assert intake.payment.status == "suspense"
    assert _events(EventType.PAYMENT_RECEIVED) == []
    run(do_assign_payment, intake.payment, subscriber=subscriber, acting_user=admin)
    (event,) = _events(EventType.PAYMENT_RECEIVED)
    assert (event.data["payment"]["subscriber_id"], event.data["payment"]["amount"]) == (subscriber.pk, "300.00")
