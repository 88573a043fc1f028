"""The outbox worker: sends the due messages and records what became of each.

``send_due()`` claims a batch of due ``queued`` messages in a short transaction (``SKIP LOCKED`` on PostgreSQL),
pushing ``next_attempt_at`` out by ``LEASE`` and counting the attempt, as the CoA queue does (network/coa.py).
The claim is the lease's timestamp: only the worker holding it may record an outcome, so a worker that stalled
past its lease (and whose messages another worker claimed again) has its answers dropped, and a worker that
died leaves its messages to be claimed again when the lease runs out.

Sending happens outside any transaction, grouped by channel into the transport's batches (100 SMS in one
request), several batches in flight at once (``ABONENT_NOTIFY_CONCURRENCY`` threads: the work is waiting on
the network). Outcomes are written set-based, one UPDATE per kind of outcome:

* sent → ``sent`` with the provider's id;
* retry → stays ``queued``, due again after ``BACKOFF_S`` (or the provider's ``retry_after`` if longer), until
  ``MAX_ATTEMPTS`` → ``failed``;
* undeliverable / failed → final, with the error code (``errors.MessageError``) and the provider's words;
* a subscriber who turned the channel off since the message was queued → ``skipped`` (``channel_off``), and a
  Telegram chat that blocked the bot since → ``undeliverable`` (``bot_blocked``), both without sending;
* no transport configured for the channel → ``skipped`` (``no_transport``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Value, When

from abonent.core import clock

from .channels import transport_for
from .channels.base import Outcome, Result
from .errors import MessageError
from .models import Channel, Message, MessageStatus, Preference, TelegramChat

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 1000
MAX_ATTEMPTS = 6
# Wait after the n-th unsuccessful attempt (n = 1..MAX_ATTEMPTS-1): 30 s, 2 min, 10 min, 30 min, 2 h; the
# last attempt comes about 2 h 43 min after the first, long enough for an operator to top up an SMS account.
BACKOFF_S = (30, 120, 600, 1800, 7200)
# How long a claimed message stays invisible to other workers. A batch that has not started sending by half of
# it is handed back unsent (``RELEASED``), so the lease is never outlived by a slow queue of batches.
LEASE = dt.timedelta(minutes=5)
SKIPPED = "skipped"  # an outcome decided here, without a transport
RELEASED = "released"  # not tried in time: the attempt is given back
_UPDATE_CHUNK = 500  # ids per UPDATE: inside SQLite's variable limit


def send_due(*, limit: int = DEFAULT_BATCH, channel: str | None = None) -> dict[str, int]:
    """Send one batch of due messages (of ``channel``, or all) and record the outcomes. Returns how many ended
    in each way (``sent``, ``retry``, ``failed``, ``undeliverable``, ``skipped``, ``released``, ``stale``).
    Safe to run in several threads and processes at once."""
    claimed, lease = _claim_due(limit, channel)
    if not claimed:
        return {}
    outcomes = _precheck(claimed)
    to_send = [message for message in claimed if message.pk not in outcomes]
    outcomes.update(_send(to_send, give_up_at=time.monotonic() + LEASE.total_seconds() / 2))
    return _record(claimed, outcomes, lease)


def _claim_due(limit: int, channel: str | None) -> tuple[list[Message], dt.datetime]:
    now = clock.now()
    lease = now + LEASE
    with transaction.atomic():
        due = Message.objects.filter(status=MessageStatus.QUEUED, next_attempt_at__lte=now)
        if channel:
            due = due.filter(channel=channel)
        due = due.order_by("next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.defer("created_at", "dedup_key", "finished_at", "sent_at")[:limit])
        if not rows:
            return [], lease
        ids = [row.pk for row in rows]
        # The attempt counts from the moment it is claimed: a worker that dies mid-send still used it.
        for start in range(0, len(ids), _UPDATE_CHUNK):
            Message.objects.filter(pk__in=ids[start : start + _UPDATE_CHUNK]).update(
                attempts=F("attempts") + 1, next_attempt_at=lease
            )
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = lease
    return rows, lease


def _precheck(messages: list[Message]) -> dict[int, Outcome]:
    """Outcomes known without sending: the channel turned off since queueing, a Telegram chat blocked since."""
    outcomes: dict[int, Outcome] = {}
    subscriber_ids = {m.subscriber_id for m in messages if m.subscriber_id is not None}
    off: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(subscriber_ids), _UPDATE_CHUNK):
        chunk = sorted(subscriber_ids)[start : start + _UPDATE_CHUNK]
        for pref in Preference.objects.filter(subscriber_id__in=chunk).only("subscriber_id", *Channel.values):
            off[pref.subscriber_id] = {channel for channel in Channel.values if not getattr(pref, channel)}
    chats = {m.address for m in messages if m.channel == Channel.TELEGRAM}
    blocked = set()
    if chats:
        chat_ids = [int(chat) for chat in chats if chat.lstrip("-").isdigit()]
        blocked = {
            str(chat)
            for chat in TelegramChat.objects.filter(chat_id__in=chat_ids, blocked_at__isnull=False).values_list(
                "chat_id", flat=True
            )
        }
    for message in messages:
        if message.subscriber_id is not None and message.channel in off.get(message.subscriber_id, ()):
            outcomes[message.pk] = Outcome(SKIPPED, error=MessageError.CHANNEL_OFF)
        elif message.channel == Channel.TELEGRAM and message.address in blocked:
            outcomes[message.pk] = Outcome(Result.UNDELIVERABLE, error=MessageError.BOT_BLOCKED)
    return outcomes


def _send(messages: list[Message], *, give_up_at: float) -> dict[int, Outcome]:
    """Each message's outcome; the transports' batches run side by side in a thread pool."""
    outcomes: dict[int, Outcome] = {}
    by_channel: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        by_channel[message.channel].append(message)
    jobs = []
    for channel, items in by_channel.items():
        transport = transport_for(channel)
        if transport is None:
            for message in items:
                outcomes[message.pk] = Outcome(SKIPPED, error=MessageError.NO_TRANSPORT)
            continue
        for start in range(0, len(items), transport.max_batch):
            jobs.append((transport, items[start : start + transport.max_batch]))
    if not jobs:
        return outcomes
    workers = max(1, min(int(settings.ABONENT_NOTIFY_CONCURRENCY), len(jobs)))
    if workers == 1:
        results = [_run(transport, batch, give_up_at) for transport, batch in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify") as pool:
            results = list(pool.map(lambda job: _run(job[0], job[1], give_up_at), jobs))
    for (_transport, batch), batch_outcomes in zip(jobs, results, strict=True):
        for message, outcome in zip(batch, batch_outcomes, strict=True):
            outcomes[message.pk] = outcome
    return outcomes


def _run(transport, batch: list[Message], give_up_at: float) -> list[Outcome]:
    if time.monotonic() > give_up_at:
        return [Outcome(RELEASED) for _ in batch]
    try:
        outcomes = transport.send(batch)
        if len(outcomes) != len(batch):
            raise RuntimeError(f"{type(transport).__name__} answered {len(outcomes)} outcomes for {len(batch)}")
    except Exception:  # a bug in a transport must not lose the batch: retried like a provider fault, and logged
        logger.exception("%s transport failed on a batch of %d", transport.channel, len(batch))
        return [Outcome(Result.RETRY, error=MessageError.INTERNAL) for _ in batch]
    return outcomes


def backoff(attempts: int, retry_after: float | None = None) -> dt.timedelta:
    """The wait after the ``attempts``-th unsuccessful attempt, at least what the provider asked for."""
    wait = BACKOFF_S[min(max(attempts, 1), len(BACKOFF_S)) - 1]
    if retry_after is not None:
        wait = max(wait, min(retry_after, BACKOFF_S[-1]))
    return dt.timedelta(seconds=wait)


def _record(claimed: list[Message], outcomes: dict[int, Outcome], lease: dt.datetime) -> dict[str, int]:
    """Write the outcomes, one UPDATE per kind of outcome, each only while our claim (the lease) holds."""
    now = clock.now()
    counts: Counter[str] = Counter()
    sent: dict[int, str] = {}
    groups: dict[tuple, list[int]] = defaultdict(list)
    released: list[int] = []
    blocked_chats: set[str] = set()
    for message in claimed:
        outcome = outcomes[message.pk]
        detail = outcome.detail[:500]
        if outcome.result == Result.SENT:
            sent[message.pk] = outcome.provider_id[:100]
            counts["sent"] += 1
        elif outcome.result == RELEASED:
            released.append(message.pk)
        elif outcome.result == Result.RETRY and message.attempts < MAX_ATTEMPTS:
            due = now + backoff(message.attempts, outcome.retry_after)
            groups[(MessageStatus.QUEUED, due, outcome.error, detail, outcome.provider_id[:100])].append(message.pk)
        else:
            status = {
                Result.UNDELIVERABLE: MessageStatus.UNDELIVERABLE,
                SKIPPED: MessageStatus.SKIPPED,
            }.get(outcome.result, MessageStatus.FAILED)
            groups[(status, None, outcome.error, detail, outcome.provider_id[:100])].append(message.pk)
            if outcome.error == MessageError.BOT_BLOCKED and message.channel == Channel.TELEGRAM:
                blocked_chats.add(message.address)
    held = Message.objects.filter(status=MessageStatus.QUEUED, next_attempt_at=lease)
    written = 0
    sent_ids = list(sent)
    for start in range(0, len(sent_ids), _UPDATE_CHUNK):
        chunk = sent_ids[start : start + _UPDATE_CHUNK]
        ids = {sent[pk] for pk in chunk}
        provider_id = Value(ids.pop()) if len(ids) == 1 else Case(*(When(pk=pk, then=Value(sent[pk])) for pk in chunk))
        written += held.filter(pk__in=chunk).update(
            status=MessageStatus.SENT,
            sent_at=now,
            finished_at=now,
            next_attempt_at=now,
            provider_id=provider_id,
            error="",
            error_detail="",
        )
    for (status, due, error, detail, provider_id), ids in groups.items():
        fields = {"status": status, "error": error, "error_detail": detail, "provider_id": provider_id}
        if status == MessageStatus.QUEUED:
            fields["next_attempt_at"] = due
            counts["retry"] += len(ids)
        else:
            fields.update(next_attempt_at=now, finished_at=now)
            counts[status] += len(ids)
        for start in range(0, len(ids), _UPDATE_CHUNK):
            written += held.filter(pk__in=ids[start : start + _UPDATE_CHUNK]).update(**fields)
    for start in range(0, len(released), _UPDATE_CHUNK):
        written += held.filter(pk__in=released[start : start + _UPDATE_CHUNK]).update(
            next_attempt_at=now, attempts=F("attempts") - 1
        )
    if released:
        counts[RELEASED] = len(released)
    if blocked_chats:
        from .telegram_link import mark_blocked

        mark_blocked(blocked_chats)
    if written < len(claimed):
        # Another worker claimed these again after our lease ran out: its outcome stands, not ours.
        counts["stale"] = len(claimed) - written
        logger.warning("notifications: %d outcomes of an expired claim dropped", len(claimed) - written)
    return dict(counts)


def drain(*, budget_s: float, limit: int = DEFAULT_BATCH, channel: str | None = None) -> dict[str, int]:
    """``send_due`` batch after batch until the queue has nothing due or ``budget_s`` seconds have passed."""
    totals: Counter[str] = Counter()
    started = time.monotonic()
    while time.monotonic() - started < budget_s:
        counts = send_due(limit=limit, channel=channel)
        totals.update(counts)
        if sum(counts.values()) < limit:
            break
    return dict(totals)
