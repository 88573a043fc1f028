"""Expanding a bulk message into one message per subscriber, a chunk per transaction, released at its rate.

Subscribers are taken in id order and each chunk commits whole with the bulk row locked, so a rerun (a crash, a
second worker, the next minute's job) resumes after the highest subscriber already expanded, and the keys
(``bulk:<id>:<subscriber>``) keep any overlap out. The throttle: the i-th message that will be sent is due
``i / per_minute`` minutes after the bulk was confirmed (after the first expansion, if that runs late), each chunk
going on one slot after the last message already expanded, or from now if that is past (the rate holds whenever a
chunk runs); those that will not be sent (no address, no consent) do not take a slot. For SMS and Telegram the slots
are counted in the subscriber's waking hours: the stream pauses in the quiet hours and goes on at the same pace
after them (``calculations.pace_past_quiet_hours``), rather than every slot of the night falling due at 09:00 at
once. Cancelling locks the same row, so it waits for a chunk in progress and then stops the rest.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Max

from abonent.core import clock
from abonent.staff.permissions import allowed_branch_ids
from abonent.subscribers.models import Subscriber, SubscriberStatus

from .models import BulkMessage, BulkStatus, Event, Message, MessageStatus
from .queueing import Notice, notify_many
from .selectors import audience_ids, reachable

CHUNK = 1000


def _branch_ids(bulk: BulkMessage) -> set[int] | None:
    # The audience as its author could see it: a branch-limited operator reaches only their branches.
    return allowed_branch_ids(bulk.created_by) if bulk.created_by_id else None


def _sendable(ids: list[int], bulk: BulkMessage) -> set[int]:
    qs = reachable(Subscriber.objects.filter(pk__in=ids), bulk.channel).exclude(status=SubscriberStatus.CLOSED)
    if bulk.marketing:
        qs = qs.filter(consent_marketing=True)
    return set(qs.values_list("pk", flat=True))


def expand_bulk(bulk_id: int, *, chunk: int = CHUNK) -> int:
    """Expand what is left of one bulk message; returns the messages written. Safe to run twice."""
    written = 0
    while True:
        with transaction.atomic():
            bulk = (
                BulkMessage.objects.select_for_update(of=("self",))
                .select_related("created_by")
                .filter(pk=bulk_id)
                .first()
            )
            if bulk is None or bulk.status in (BulkStatus.DONE, BulkStatus.CANCELLED):
                return written
            mine = Message.objects.filter(bulk=bulk)
            last = mine.aggregate(m=Max("subscriber_id"))["m"] or 0
            ids = list(
                audience_ids(bulk.audience, bulk.audience_id, branch_ids=_branch_ids(bulk))
                .filter(pk__gt=last)
                .order_by("pk")[:chunk]
            )
            if not ids:
                if not mine.filter(status=MessageStatus.QUEUED).exists():
                    bulk.status = BulkStatus.DONE
                elif bulk.status == BulkStatus.QUEUED:
                    bulk.status = BulkStatus.SENDING
                bulk.save(update_fields=["status"])
                return written
            sendable = _sendable(ids, bulk)
            per_slot = dt.timedelta(minutes=1) / bulk.per_minute
            now = clock.now()
            last_due = mine.exclude(status=MessageStatus.SKIPPED).aggregate(m=Max("next_attempt_at"))["m"]
            anchor = max(last_due + per_slot, now) if last_due else max(bulk.created_at, now)
            notices, slot = [], 0
            for subscriber_id in ids:
                due = now
                if subscriber_id in sendable:
                    due, slot = anchor + per_slot * slot, slot + 1
                notices.append(
                    Notice(
                        subscriber_id,
                        Event.BULK,
                        f"bulk:{bulk.pk}:{subscriber_id}",
                        marketing=bulk.marketing,
                        channels=(bulk.channel,),
                        not_before=due,
                        paced_from=anchor,
                        bulk_id=bulk.pk,
                        subject=bulk.subject,
                        body=bulk.body,
                    )
                )
            written += notify_many(notices)
            if bulk.status == BulkStatus.QUEUED:
                bulk.status = BulkStatus.SENDING
                bulk.save(update_fields=["status"])


def expand_bulks() -> dict:
    """Every bulk message not finished: expanded further, or marked done once all its messages are."""
    result = {}
    for bulk_id in BulkMessage.objects.filter(status__in=[BulkStatus.QUEUED, BulkStatus.SENDING]).values_list(
        "pk", flat=True
    ):
        result[bulk_id] = expand_bulk(bulk_id)
    return result
