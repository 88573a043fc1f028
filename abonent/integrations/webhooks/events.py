"""Other apps' domain events turned into webhook deliveries. Handlers only enqueue: one ``WebhookEvent`` per thing
that happened (its id derived from its key) and one ``Delivery`` per active endpoint subscribed to its type, both
written with the unique constraints deciding, so a replayed domain event writes nothing new. Sending is the
worker's (``sending``).

| domain event (emitter)                                         | webhook type         |
|----------------------------------------------------------------|----------------------|
| ``subscriber.created`` (subscribers)                            | ``subscriber.created`` |
| ``subscriber.updated`` / ``closed`` / ``reopened`` (subscribers) | ``subscriber.changed`` |
| ``payments.payment_received`` (payments: intake, suspense)      | ``payment.received``  |
| ``subscription.plan_changed`` (billing) and the billing run's ``plans_switched`` signal | ``plan.changed`` |
| ``dunning.states_changed`` (dunning)                            | ``access.changed``    |
| ``ticket.created`` / ``ticket.updated`` (helpdesk)              | ``ticket.created`` / ``ticket.updated`` |

Domain apps are read inside the builders (``payloads``), never imported at module level: this app sits on top.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from abonent.core import clock
from abonent.core.events import on

from . import payloads
from .models import Delivery, Endpoint, EventType, WebhookEvent

logger = logging.getLogger(__name__)


def subscribed_endpoints(event_type: str) -> list[int]:
    # Few rows (one per integration): filtered here, which works on both engines' JSON.
    return [
        pk
        for pk, types in Endpoint.objects.filter(is_active=True).values_list("pk", "event_types")
        if event_type in (types or ())
    ]


def enqueue(event_type: str, items: list[tuple[str, dict]]) -> int:
    """Write the events ``items`` (``(key, data)``) and a delivery of each to every endpoint subscribed to
    ``event_type``; what exists already is left as it is. Returns deliveries created."""
    endpoint_ids = subscribed_endpoints(event_type)
    if not endpoint_ids or not items:
        return 0
    moment = clock.now()
    created = 0
    with transaction.atomic():
        rows = [
            WebhookEvent(id=WebhookEvent.id_for(key), key=key, type=event_type, data=data, created_at=moment)
            for key, data in items
        ]
        # The first handling of an event wins: a replay keeps the stored data (what was sent stays what is sent).
        WebhookEvent.objects.bulk_create(rows, ignore_conflicts=True)
        ids = [row.id for row in rows]
        existing = set(
            Delivery.objects.filter(event_id__in=ids, endpoint_id__in=endpoint_ids).values_list(
                "endpoint_id", "event_id"
            )
        )
        deliveries = [
            Delivery(endpoint_id=endpoint_id, event_id=event_id, next_attempt_at=moment, created_at=moment)
            for event_id in ids
            for endpoint_id in endpoint_ids
            if (endpoint_id, event_id) not in existing
        ]
        try:
            with transaction.atomic():
                Delivery.objects.bulk_create(deliveries)
            created = len(deliveries)
        except IntegrityError:
            # Two processes handled the same event at once: the constraint decided, ours go in one by one.
            Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    return created


def _safely(event_type: str, build) -> None:
    """Build and enqueue; a failure is logged, never raised into the emitter (its change is committed)."""
    try:
        if subscribed_endpoints(event_type):
            enqueue(event_type, build())
    except Exception:
        logger.exception("webhooks: could not queue %s", event_type)


@on("subscriber.created")
def subscriber_created(*, event: str, subscriber_id: int, **_payload) -> None:
    _safely(EventType.SUBSCRIBER_CREATED, lambda: payloads.subscriber_created(subscriber_id))


@on("subscriber.updated")
@on("subscriber.closed")
@on("subscriber.reopened")
def subscriber_changed(*, event: str, subscriber_id: int, fields=(), **_payload) -> None:
    change = event.split(".", 1)[1]
    _safely(
        EventType.SUBSCRIBER_CHANGED, lambda: payloads.subscriber_changed(subscriber_id, change=change, fields=fields)
    )


@on("payments.payment_received")
def payment_received(*, event: str, payment_id: int, **_payload) -> None:
    _safely(EventType.PAYMENT_RECEIVED, lambda: payloads.payment_received(payment_id))


@on("subscription.plan_changed")
def plan_changed(
    *, event: str, subscription_id: int, subscriber_id: int, to_plan_id: int, from_plan_id=None, **_payload
) -> None:
    today = clock.today()
    _safely(
        EventType.PLAN_CHANGED,
        lambda: payloads.plan_changed(
            subscription_id=subscription_id,
            subscriber_id=subscriber_id,
            from_plan_id=from_plan_id,
            to_plan_id=to_plan_id,
            effective_on=today,
            change_id=payloads.latest_plan_change(subscription_id, to_plan_id),
        ),
    )


def plans_switched(sender, *, switched, **_kwargs) -> None:
    """Scheduled changes a billing run put in force, inside its chunk's transaction: the deliveries commit with
    the switch. In a savepoint, and never raising: a webhook must not fail a billing run."""
    try:
        with transaction.atomic():
            items = []
            for switch in switched:
                items += payloads.plan_changed(
                    subscription_id=switch.subscription_id,
                    subscriber_id=switch.subscriber_id,
                    from_plan_id=switch.from_plan_id,
                    to_plan_id=switch.to_plan_id,
                    effective_on=switch.effective_on,
                )
            enqueue(EventType.PLAN_CHANGED, items)
    except Exception:
        logger.exception("webhooks: could not queue %d plan switches", len(switched))


# A dunning sweep may move many subscribers in one event: they are read and queued this many at a time.
ACCESS_CHUNK = 1000


@on("dunning.states_changed")
def access_changed(*, event: str, subscriber_ids=(), **_payload) -> None:
    ids = sorted({int(s) for s in subscriber_ids or ()})
    for start in range(0, len(ids), ACCESS_CHUNK):
        chunk = ids[start : start + ACCESS_CHUNK]
        _safely(EventType.ACCESS_CHANGED, lambda chunk=chunk: payloads.access_changed(chunk))


@on("ticket.created")
def ticket_created(*, event: str, ticket_id: int, **_payload) -> None:
    _safely(EventType.TICKET_CREATED, lambda: payloads.ticket_created(ticket_id))


@on("ticket.updated")
def ticket_updated(*, event: str, ticket_id: int, comment_id=None, **_payload) -> None:
    _safely(EventType.TICKET_UPDATED, lambda: payloads.ticket_updated(ticket_id, comment_id=comment_id))


def connect_billing() -> None:
    """Listen to billing's run (imported here, not at module level: this app sits on top)."""
    from abonent.billing.engine import plans_switched as signal

    signal.connect(plans_switched, dispatch_uid="webhooks.plans_switched")
