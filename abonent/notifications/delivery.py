"""The outbox worker: sends the due messages and records what became of each.

``send_due()`` claims a batch of due ``queued`` messages in a short transaction (``SKIP LOCKED`` on PostgreSQL),
pushing ``next_attempt_at`` out by ``LEASE`` and counting the attempt, as the CoA queue does (network/coa.py).
The claim is the lease's timestamp: only the worker holding it may record an outcome, so a worker that stalled
past its lease (and whose messages another worker claimed again) has its answers dropped, and a worker that
died leaves its messages to be claimed again when the lease runs out. A message claimed ``MAX_ATTEMPTS`` times
without an outcome (its worker died each time) is not claimed again: it ends ``failed`` (``interrupted``).

Sending happens outside any transaction, grouped by channel into the transport's batches (100 SMS in one
request), several batches in flight at once (``ABONENT_NOTIFY_CONCURRENCY`` threads: the work is waiting on
the network). A batch sent one by one (Telegram, SMTP) can take longer than one call, so the lease must hold
for every *step*, not only when the batch starts: while batches run, this thread renews the lease of what is
not recorded yet, and each transport asks its ``Budget`` before every step. No step starts after half the
lease (what is left is handed back, ``released``, its attempt given back) or once the renewal found the claim
taken. Each batch's outcomes are written as soon as it ends, set-based, one UPDATE per kind of outcome:

* sent → ``sent`` with the provider's id;
* retry → stays ``queued``, due again after ``BACKOFF_S`` (or the provider's ``retry_after`` if longer), moved
  out of the subscriber's quiet hours for SMS and Telegram, until ``MAX_ATTEMPTS`` → ``failed``;
* undeliverable / failed → final, with the error code (``errors.MessageError``) and the provider's words;
* checked again just before sending, as queueing checked them: advertising to a subscriber who withdrew the
  consent → ``skipped`` (``no_consent``, 38-FZ art. 18: the sending stops at once), a contract closed since
  (``closed``, except the events that still go to a closed contract), a channel turned off since
  (``channel_off``), a Telegram chat that blocked the bot since → ``undeliverable`` (``bot_blocked``); an SMS or
  Telegram message whose subscriber's quiet hours began since it fell due → ``postponed`` to their end;
* no transport configured for the channel → ``skipped`` (``no_transport``).

A portal login code (``calculations.SECRET_CODE_EVENTS``) is kept readable in ``Message.body`` only while it
waits to go out: once its message is final (sent, failed, undeliverable, skipped, cancelled) the digits are
replaced by dots in the stored subject and text (``redact_codes``), and one still queued when the code's lifetime
(``ABONENT_PORTAL_CODE_SECONDS``) has passed is cancelled (``expired``) instead of being sent (``code_redaction``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Value, When

from abonent.core import clock, queues
from abonent.subscribers.models import Subscriber, SubscriberStatus

from .channels import transport_for
from .channels.base import Budget, Outcome, Result
from .code_redaction import cancel_expired_codes, redact_codes
from .errors import MessageError
from .models import Channel, Message, MessageStatus, Preference, TelegramChat
from .queueing import (
    _FOR_CLOSED,
    QUIET_CHANNELS,
    URGENT_EVENTS,
    after_quiet_hours,
    quiet_hours_default,
    quiet_window_of,
)

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 1000
MAX_ATTEMPTS = 6
# Wait after the n-th unsuccessful attempt (n = 1..MAX_ATTEMPTS-1): 30 s, 2 min, 10 min, 30 min, 2 h; the
# last attempt comes about 2 h 43 min after the first, long enough for an operator to top up an SMS account.
BACKOFF_S = (30, 120, 600, 1800, 7200)
# How long a claimed message stays invisible to other workers (renewed while its batch is being sent). No step of
# a batch starts after half of it (``RELEASED``), so a slow queue of batches never keeps messages from others.
LEASE = dt.timedelta(minutes=5)
SKIPPED = "skipped"  # an outcome decided here, without a transport
RELEASED = Result.NOT_TRIED  # not tried in time: the attempt is given back
POSTPONED = "postponed"  # the subscriber's quiet hours began since it fell due: after them, the attempt given back
_UPDATE_CHUNK = 500  # ids per UPDATE: inside SQLite's variable limit


def send_due(*, limit: int = DEFAULT_BATCH, channel: str | None = None) -> dict[str, int]:
    """Send one batch of due messages (of ``channel``, or all) and record the outcomes. Returns how many ended
    in each way (``sent``, ``retry``, ``failed``, ``undeliverable``, ``skipped``, ``released``, ``postponed``,
    ``stale``).
    Safe to run in several threads and processes at once."""
    started = time.monotonic()  # before the claim: the lease is ours for at most LEASE from here
    claimed, lease = _claim_due(limit, channel)
    if not claimed:
        return {}
    try:
        return _deliver(claimed, lease, started)
    finally:
        redact_codes(claimed)


def _deliver(claimed: list[Message], lease: dt.datetime, started: float) -> dict[str, int]:
    claim = _Claim(claimed, lease, started)
    outcomes = _precheck(claimed)
    counts: Counter[str] = Counter()
    if outcomes:
        decided = [message for message in claimed if message.pk in outcomes]
        counts.update(_record(decided, outcomes, claim.lease))
        claim.done(decided)
    to_send = [message for message in claimed if message.pk not in outcomes]
    for batch, batch_outcomes in _send(to_send, claim):
        counts.update(_record(batch, batch_outcomes, claim.lease))
        claim.done(batch)
    return dict(counts)


class _Claim:
    """This worker's hold on what it claimed: the lease (what ``next_attempt_at`` says while the claim holds),
    renewed for the messages not recorded yet while their batches run, and the ``Budget`` the transports ask."""

    def __init__(self, messages: list[Message], lease: dt.datetime, started: float):
        self.pending = {message.pk for message in messages}
        self.lease = lease
        self.span = max(LEASE.total_seconds(), 0.0)
        self.renewed_at = started
        # Renewed at half the lease; steps stop at three quarters if the renewal did not happen (a stalled
        # database), leaving the last quarter for the steps already under way.
        self.budget = Budget(start_until=started + self.span / 2, held_until=started + self.span * 0.75)

    def done(self, messages: list[Message]) -> None:
        self.pending.difference_update(message.pk for message in messages)

    def renew_if_due(self) -> None:
        moment = time.monotonic()
        if not self.pending or self.budget.lost or moment - self.renewed_at < self.span / 2:
            return
        lease = clock.now() + LEASE
        ids = sorted(self.pending)
        held = 0
        for start in range(0, len(ids), _UPDATE_CHUNK):
            held += Message.objects.filter(
                pk__in=ids[start : start + _UPDATE_CHUNK], status=MessageStatus.QUEUED, next_attempt_at=self.lease
            ).update(next_attempt_at=lease)
        if held < len(ids):
            # Our lease ran out before this renewal and another worker claimed some of them: start nothing more.
            self.budget.lost = True
            logger.warning("notifications: %d claimed messages were taken by another worker", len(ids) - held)
        self.lease, self.renewed_at = lease, moment
        self.budget.held_until = moment + self.span * 0.75


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
        # Claimed MAX_ATTEMPTS times and still queued: no worker lived to record an outcome (the message kills
        # its worker, or the worker is killed each time). Final here, or it would be claimed forever.
        exhausted = [row for row in rows if row.attempts >= MAX_ATTEMPTS]
        if exhausted:
            rows = [row for row in rows if row.attempts < MAX_ATTEMPTS]
            Message.objects.filter(pk__in=[row.pk for row in exhausted]).update(
                status=MessageStatus.FAILED,
                finished_at=now,
                next_attempt_at=now,
                error=MessageError.INTERRUPTED,
                error_detail=f"{MAX_ATTEMPTS} attempts without an outcome recorded",
            )
            logger.error("notifications: %d messages failed, every attempt cut short", len(exhausted))
            redact_codes(exhausted)
        rows = cancel_expired_codes(rows, now)
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
    """Outcomes known without sending: advertising without consent any more, a contract closed since, the channel
    turned off since queueing, a Telegram chat blocked since."""
    outcomes: dict[int, Outcome] = {}
    subscriber_ids = sorted({m.subscriber_id for m in messages if m.subscriber_id is not None})
    off: dict[int, set[str]] = defaultdict(set)
    no_consent: set[int] = set()
    closed: set[int] = set()
    for start in range(0, len(subscriber_ids), _UPDATE_CHUNK):
        chunk = subscriber_ids[start : start + _UPDATE_CHUNK]
        for pref in Preference.objects.filter(subscriber_id__in=chunk).only("subscriber_id", *Channel.values):
            off[pref.subscriber_id] = {channel for channel in Channel.values if not getattr(pref, channel)}
        for pk, consent, status in Subscriber.objects.filter(pk__in=chunk).values_list(
            "pk", "consent_marketing", "status"
        ):
            if not consent:
                no_consent.add(pk)
            if status == SubscriberStatus.CLOSED:
                closed.add(pk)
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
        subscriber_id = message.subscriber_id
        if message.marketing and subscriber_id in no_consent:
            outcomes[message.pk] = Outcome(SKIPPED, error=MessageError.NO_CONSENT)
        elif subscriber_id in closed and message.event not in _FOR_CLOSED:
            outcomes[message.pk] = Outcome(SKIPPED, error=MessageError.CLOSED)
        elif (
            subscriber_id is not None
            and message.channel in off.get(subscriber_id, ())
            and message.event not in URGENT_EVENTS
        ):
            outcomes[message.pk] = Outcome(SKIPPED, error=MessageError.CHANNEL_OFF)
        elif message.channel == Channel.TELEGRAM and message.address in blocked:
            outcomes[message.pk] = Outcome(Result.UNDELIVERABLE, error=MessageError.BOT_BLOCKED)
    # Quiet hours hold at send time too: a message due at 20:59 (a retry, a backlog) is not sent at 21:00:30.
    now = clock.now()
    for pk, window in _quiet_windows([m for m in messages if m.pk not in outcomes]).items():
        later = after_quiet_hours(now, *window)
        if later > now:
            outcomes[pk] = Outcome(POSTPONED, retry_after=(later - now).total_seconds())
    return outcomes


def _send(messages: list[Message], claim: _Claim):
    """Yields ``(batch, {pk: outcome})`` as each batch ends; the transports' batches run side by side in a thread
    pool while this thread keeps the claim's lease renewed."""
    by_channel: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        by_channel[message.channel].append(message)
    jobs = []
    for channel, items in by_channel.items():
        transport = transport_for(channel)
        if transport is None:
            yield items, {message.pk: Outcome(SKIPPED, error=MessageError.NO_TRANSPORT) for message in items}
            continue
        for start in range(0, len(items), transport.max_batch):
            jobs.append((transport, items[start : start + transport.max_batch]))
    if not jobs:
        return
    workers = max(1, min(int(settings.ABONENT_NOTIFY_CONCURRENCY), len(jobs)))
    beat = min(max(claim.span / 8, 0.05), 30.0)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify") as pool:
        running = {pool.submit(_run, transport, batch, claim.budget): batch for transport, batch in jobs}
        while running:
            finished, _pending = wait(running, timeout=beat, return_when=FIRST_COMPLETED)
            for future in finished:
                batch = running.pop(future)
                yield batch, {m.pk: outcome for m, outcome in zip(batch, future.result(), strict=True)}
            claim.renew_if_due()


def _run(transport, batch: list[Message], budget: Budget) -> list[Outcome]:
    if not budget.allows():
        return [Outcome(RELEASED) for _ in batch]
    try:
        outcomes = transport.send(batch, budget)
        if len(outcomes) != len(batch):
            raise RuntimeError(f"{type(transport).__name__} answered {len(outcomes)} outcomes for {len(batch)}")
    except Exception:  # a bug in a transport must not lose the batch: retried like a provider fault, and logged
        logger.exception("%s transport failed on a batch of %d", transport.channel, len(batch))
        return [_after_crash(message) for message in batch]
    return outcomes


def _after_crash(message: Message) -> Outcome:
    if message.error == MessageError.TIMEOUT and message.provider_id:
        # Whether an earlier attempt went out is still unknown: the provider's id and the mark stay, so the next
        # attempt asks before sending again (SMSC's status.php), as it would have this time.
        return Outcome(Result.RETRY, provider_id=message.provider_id, error=MessageError.TIMEOUT, detail="internal")
    return Outcome(Result.RETRY, error=MessageError.INTERNAL)


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
    postponed: dict[dt.datetime, list[int]] = defaultdict(list)
    blocked_chats: set[str] = set()
    retries = [m for m in claimed if outcomes[m.pk].result == Result.RETRY and m.attempts < MAX_ATTEMPTS]
    quiet = _quiet_windows(retries)
    for message in claimed:
        outcome = outcomes[message.pk]
        detail = outcome.detail[:500]
        if outcome.result == Result.SENT:
            sent[message.pk] = outcome.provider_id[:100]
            counts["sent"] += 1
        elif outcome.result == RELEASED:
            released.append(message.pk)
        elif outcome.result == POSTPONED:
            postponed[now + dt.timedelta(seconds=outcome.retry_after or 0)].append(message.pk)
        elif outcome.result == Result.RETRY and message.attempts < MAX_ATTEMPTS:
            due = now + backoff(message.attempts, outcome.retry_after)
            if message.pk in quiet:
                due = after_quiet_hours(due, *quiet[message.pk])
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
    for due, ids in postponed.items():
        for start in range(0, len(ids), _UPDATE_CHUNK):
            written += held.filter(pk__in=ids[start : start + _UPDATE_CHUNK]).update(
                next_attempt_at=due, attempts=F("attempts") - 1
            )
        counts[POSTPONED] += len(ids)
    if blocked_chats:
        from .telegram_link import mark_blocked

        mark_blocked(blocked_chats)
    if written < len(claimed):
        # Another worker claimed these again after our lease ran out: its outcome stands, not ours.
        counts["stale"] = len(claimed) - written
        logger.warning("notifications: %d outcomes of an expired claim dropped", len(claimed) - written)
    return dict(counts)


def _quiet_windows(messages: list[Message]) -> dict[int, tuple]:
    """``{message id: (time zone, quiet hours)}`` of the SMS and Telegram messages among ``messages``: a retry
    is due no earlier than queueing would have let it be (the subscriber's hours, in their time zone)."""
    quiet = [
        m
        for m in messages
        if m.channel in QUIET_CHANNELS and m.subscriber_id is not None and m.event not in URGENT_EVENTS
    ]
    if not quiet:
        return {}
    ids = sorted({m.subscriber_id for m in quiet})
    default = quiet_hours_default()
    windows = {}
    for start in range(0, len(ids), _UPDATE_CHUNK):
        chunk = ids[start : start + _UPDATE_CHUNK]
        preferences = {p.subscriber_id: p for p in Preference.objects.filter(subscriber_id__in=chunk)}
        for subscriber in Subscriber.objects.filter(pk__in=chunk).select_related("branch").only("pk", "branch"):
            windows[subscriber.pk] = quiet_window_of(subscriber, preferences.get(subscriber.pk), default)
    return {m.pk: windows[m.subscriber_id] for m in quiet if m.subscriber_id in windows}


def drain(*, budget_s: float, limit: int = DEFAULT_BATCH, channel: str | None = None) -> dict[str, int]:
    """``send_due`` batch after batch until the queue has nothing due or ``budget_s`` seconds have passed."""
    return queues.drain(lambda n: send_due(limit=n, channel=channel), limit=limit, budget_s=budget_s)
