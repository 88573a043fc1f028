"""Sending due deliveries: claim, POST, record (docs/webhooks.md, "Delivery and retries").

``send_due(limit)`` claims a batch of due ``pending`` deliveries in a short transaction (``SKIP LOCKED`` on
PostgreSQL) and, row by row, moves ``next_attempt_at`` to a lease and counts the attempt with a conditional
UPDATE that only one worker can win (on SQLite too, where nothing is skipped). The lease is the claim: only the
worker holding it records the outcome, so one that stalled past it (its rows claimed again) has its answers
dropped, and one that died leaves its rows to be claimed again when the lease runs out.

The POST happens outside any transaction, with a connect and a read deadline and one on the whole of it
(``_Watchdog``). The outcome:

* 2xx → ``delivered``;
* a network error, a deadline passed, 5xx or 429 → retried after ``BACKOFF_S`` (doubling), until the round's
  ``MAX_ATTEMPTS`` → ``failed``;
* any other answer (4xx but 429, 3xx: redirects are not followed, a signed body must not go elsewhere) →
  ``failed`` at once: the receiver refused this event and sending it again will not change its mind.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db import connection, transaction

from abonent.core import clock, secrets

from .actions import is_local
from .models import Attempt, AttemptOutcome, Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 50
MAX_ATTEMPTS = 8
# The wait after the n-th unsuccessful attempt: 30 s doubling (30 s, 1 min, 2 min, … about 1 h 4 min after the
# first), capped at BACKOFF_MAX_S.
BACKOFF_FIRST_S = 30
BACKOFF_MAX_S = 6 * 3600
# How long a claimed delivery is this worker's, at least: ``lease_span`` makes it longer when the deadlines are,
# so a POST started within the lease always ends within it.
LEASE = dt.timedelta(minutes=2)
RESPONSE_EXCERPT = 1024  # bytes of the receiver's answer kept for the log page
USER_AGENT = "Abonent-Webhooks/1"


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_FIRST_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over ``"<timestamp>.<body>"`` with the endpoint's secret, hex: the ``v1=`` of
    ``Abonent-Signature``."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def body_of(delivery: Delivery) -> bytes:
    # Compact and key-sorted: the same event is the same bytes at every attempt and redelivery.
    return json.dumps(delivery.event.envelope(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Answer:
    outcome: str
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""
    duration_ms: int = 0


def _classify(status_code: int) -> str:
    if 200 <= status_code < 300:
        return AttemptOutcome.DELIVERED
    if status_code >= 500 or status_code == 429:
        return AttemptOutcome.RETRY
    return AttemptOutcome.FAILED


class LocalAddressRefused(Exception):
    """The receiver's name resolved to this host or a link-local address (``actions.is_local``)."""


def _check_peer(stream) -> None:
    """Refuse a connection that reached this host or a link-local address before the request is written: the URL
    was checked when it was saved, but a name may resolve elsewhere now (DNS rebinding, /etc/hosts). The address
    checked is the one connected to, so no second lookup can disagree with it."""
    if settings.ABONENT_WEBHOOK_ALLOW_LOCAL or stream is None:
        return
    sock = stream.get_extra_info("socket")
    try:
        peer = ipaddress.ip_address(sock.getpeername()[0])
    except (OSError, ValueError, AttributeError):
        peer = None
    if peer is None or is_local(peer):
        with contextlib.suppress(Exception):
            stream.close()
        raise LocalAddressRefused(f"refused: the receiver's name resolved to a local address ({peer})")


class _Watchdog:
    """A deadline on the whole POST. httpx's deadlines hold per socket operation, so a receiver dripping its status
    line and headers a byte at a time would hold the sender for ever; at ``deadline`` (monotonic) this shuts the
    connection's socket down, which ends any read in progress. The socket is caught from httpx's ``trace``
    extension as the connection opens (connections are not reused: ``client()``)."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.socket: socket.socket | None = None
        self.fired = False
        self._timer: threading.Timer | None = None

    def trace(self, event_name: str, info: dict) -> None:
        if event_name == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            self.socket = stream.get_extra_info("socket") if stream is not None else None
            _check_peer(stream)

    def _cut(self) -> None:
        if self.socket is not None:
            self.fired = True
            with contextlib.suppress(OSError):
                self.socket.shutdown(socket.SHUT_RDWR)

    def __enter__(self):
        self._timer = threading.Timer(max(self.deadline - time.monotonic(), 0.0), self._cut)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()


def post(delivery: Delivery, client: httpx.Client) -> Answer:
    endpoint = delivery.endpoint
    body = body_of(delivery)
    timestamp = int(clock.now().timestamp())
    try:
        secret = secrets.decrypt(endpoint.secret_encrypted)
    except secrets.SecretError:
        return Answer(AttemptOutcome.RETRY, error="secret unreadable: ABONENT_FIELD_KEY changed")
    headers = {
        "Content-Type": "application/json",
        # An answer is never inflated (a few hundred bytes of brotli make gigabytes): its raw bytes are read.
        "Accept-Encoding": "identity",
        "User-Agent": USER_AGENT,
        "Abonent-Event-Id": str(delivery.event_id),
        "Abonent-Event-Type": delivery.event.type,
        "Abonent-Timestamp": str(timestamp),
        "Abonent-Signature": f"v1={sign(secret, timestamp, body)}",
        "Abonent-Delivery-Attempt": str(delivery.attempts),
    }
    started = time.monotonic()
    watchdog = _Watchdog(
        started + settings.ABONENT_WEBHOOK_CONNECT_TIMEOUT_S + 3 * settings.ABONENT_WEBHOOK_READ_TIMEOUT_S
    )
    try:
        with (
            watchdog,
            client.stream(
                "POST", endpoint.url, content=body, headers=headers, extensions={"trace": watchdog.trace}
            ) as response,
        ):
            excerpt = b""
            # The read deadline holds per read: a receiver dripping its answer a byte at a time would stretch the
            # POST past the lease, so the whole answer gets a deadline too (within post_budget_s()).
            cutoff = started + settings.ABONENT_WEBHOOK_CONNECT_TIMEOUT_S + 3 * settings.ABONENT_WEBHOOK_READ_TIMEOUT_S
            for chunk in response.iter_raw():
                excerpt += chunk
                if len(excerpt) >= RESPONSE_EXCERPT:
                    break  # the rest is not read: an absurd answer costs nothing
                if time.monotonic() > cutoff:
                    raise httpx.ReadTimeout("the answer took too long")
            answer = Answer(
                _classify(response.status_code),
                status_code=response.status_code,
                # PostgreSQL's text refuses NUL: an answer holding one must not crash the recording of its outcome.
                excerpt=excerpt[:RESPONSE_EXCERPT].decode("utf-8", "replace").replace("\x00", "\ufffd"),
            )
    except LocalAddressRefused as error:
        answer = Answer(AttemptOutcome.FAILED, error=str(error)[:300])
    except httpx.TimeoutException as error:
        answer = Answer(AttemptOutcome.RETRY, error=f"timeout: {type(error).__name__}")
    except httpx.HTTPError as error:
        if watchdog.fired:
            answer = Answer(AttemptOutcome.RETRY, error="timeout: the whole answer took too long")
        else:
            answer = Answer(AttemptOutcome.RETRY, error=f"{type(error).__name__}: {error}"[:300])
    answer.duration_ms = int((time.monotonic() - started) * 1000)
    return answer


def _claim(limit: int) -> tuple[list[Delivery], dt.datetime, int]:
    """The rows claimed, their lease, and how many were failed instead (see below)."""
    now = clock.now()
    lease = now + lease_span()
    claimed: list[Delivery] = []
    given_up = 0
    with transaction.atomic():
        # An integration switched off keeps its pending deliveries, unsent, until it is switched on again.
        due = Delivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        ).order_by("next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        for row in due[:limit]:
            if row.attempts >= MAX_ATTEMPTS:
                # Every try of this round was claimed and none recorded: its senders died holding it (the answer
                # kills them, or the host keeps restarting). Claimed for ever it would count past the column's
                # limit, and that error would stop every delivery behind it.
                given_up += Delivery.objects.filter(
                    pk=row.pk, status=DeliveryStatus.PENDING, next_attempt_at=row.next_attempt_at, attempts=row.attempts
                ).update(
                    status=DeliveryStatus.FAILED,
                    finished_at=now,
                    next_attempt_at=now,
                    last_error=f"its lease ran out {row.attempts} times: the sender stopped while sending it",
                )
                continue
            # Conditional on what we read: a worker that read the same row (SQLite skips nothing) loses here.
            won = Delivery.objects.filter(
                pk=row.pk, status=DeliveryStatus.PENDING, next_attempt_at=row.next_attempt_at, attempts=row.attempts
            ).update(next_attempt_at=lease, attempts=row.attempts + 1)
            if won:
                row.next_attempt_at, row.attempts = lease, row.attempts + 1
                claimed.append(row)
    return claimed, lease, given_up


def _record(delivery: Delivery, answer: Answer, *, started_at: dt.datetime, lease: dt.datetime) -> str:
    """Write the attempt and the delivery's new state while our lease holds; ``stale`` when it does not."""
    now = clock.now()
    outcome = answer.outcome
    if outcome == AttemptOutcome.RETRY and delivery.attempts >= MAX_ATTEMPTS:
        outcome = AttemptOutcome.FAILED
    update = {"last_status_code": answer.status_code, "last_error": answer.error[:300]}
    if outcome == AttemptOutcome.DELIVERED:
        update.update(status=DeliveryStatus.DELIVERED, finished_at=now, next_attempt_at=now)
    elif outcome == AttemptOutcome.FAILED:
        update.update(status=DeliveryStatus.FAILED, finished_at=now, next_attempt_at=now)
    else:
        update.update(next_attempt_at=now + backoff(delivery.attempts))
    with transaction.atomic():
        held = Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, next_attempt_at=lease, round=delivery.round
        ).update(**update)
        if not held:
            logger.warning("webhooks: delivery %s was taken by another worker; outcome dropped", delivery.pk)
            return "stale"
        number = Attempt.objects.filter(delivery_id=delivery.pk).count() + 1
        Attempt.objects.create(
            delivery_id=delivery.pk,
            number=number,
            round=delivery.round,
            started_at=started_at,
            duration_ms=answer.duration_ms,
            outcome=answer.outcome if outcome != AttemptOutcome.FAILED else AttemptOutcome.FAILED,
            status_code=answer.status_code,
            error=answer.error[:300],
            response_excerpt=answer.excerpt,
        )
    return outcome


def post_budget_s() -> float:
    """The longest one POST may take: connecting, writing the body, and the few reads of the excerpt."""
    return settings.ABONENT_WEBHOOK_CONNECT_TIMEOUT_S + 4 * settings.ABONENT_WEBHOOK_READ_TIMEOUT_S


def lease_span() -> dt.timedelta:
    return max(LEASE, dt.timedelta(seconds=2 * post_budget_s()))


def _release(deliveries: list[Delivery], lease: dt.datetime) -> int:
    released = 0
    for delivery in deliveries:
        released += Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, next_attempt_at=lease, round=delivery.round
        ).update(next_attempt_at=clock.now(), attempts=delivery.attempts - 1)
    return released


def client() -> httpx.Client:
    timeout = httpx.Timeout(
        connect=settings.ABONENT_WEBHOOK_CONNECT_TIMEOUT_S,
        read=settings.ABONENT_WEBHOOK_READ_TIMEOUT_S,
        write=settings.ABONENT_WEBHOOK_READ_TIMEOUT_S,
        pool=settings.ABONENT_WEBHOOK_CONNECT_TIMEOUT_S,
    )
    # No kept-alive connections: each POST opens its own, which the watchdog can cut without touching another's.
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(timeout=timeout, limits=limits, follow_redirects=False, trust_env=False)


def send_due(*, limit: int = DEFAULT_BATCH) -> dict[str, int]:
    """Send one batch of due deliveries and record the outcomes; how many ended in each way (``delivered``,
    ``retry``, ``failed``, ``stale``, ``released``). Safe to run in several threads and processes at once.

    The POSTs run side by side in ``ABONENT_WEBHOOK_CONCURRENCY`` threads (the work is waiting on receivers: one slow
    CRM must not hold back another's events); this thread records each outcome as it comes, so the database is
    only ever touched here."""
    started = time.monotonic()  # before the claim: the lease is ours for at most lease_span() from here
    claimed, lease, given_up = _claim(limit)
    counts: Counter[str] = Counter()
    if given_up:
        counts[AttemptOutcome.FAILED] += given_up
    if not claimed:
        return dict(counts)
    span, budget = lease_span().total_seconds(), post_budget_s()
    rows = {
        d.pk: d for d in Delivery.objects.filter(pk__in=[d.pk for d in claimed]).select_related("endpoint", "event")
    }
    for delivery in claimed:
        rows[delivery.pk].attempts = delivery.attempts
        rows[delivery.pk].next_attempt_at = delivery.next_attempt_at

    def attempt(delivery: Delivery, http: httpx.Client):
        if time.monotonic() - started + budget > span:
            # A POST started now could outlive the lease and be sent again by the worker that claims it next:
            # it goes back instead, its attempt given back.
            return None
        started_at = clock.now()
        return started_at, post(delivery, http)

    released: list[Delivery] = []
    workers = max(1, min(int(settings.ABONENT_WEBHOOK_CONCURRENCY), len(claimed)))
    with client() as http, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks") as pool:
        # Each task runs in a copy of this context: the clock a test moved holds in the threads too.
        futures = {pool.submit(contextvars.copy_context().run, attempt, rows[d.pk], http): rows[d.pk] for d in claimed}
        for future in as_completed(futures):
            delivery = futures[future]
            try:
                outcome = future.result()
            except Exception:  # a bug must not lose the batch: the delivery is retried like a network fault
                logger.exception("webhooks: sending delivery %s failed", delivery.pk)
                outcome = (clock.now(), Answer(AttemptOutcome.RETRY, error="internal error"))
            if outcome is None:
                released.append(delivery)
                continue
            started_at, answer = outcome
            counts[_record(delivery, answer, started_at=started_at, lease=lease)] += 1
    if released:
        counts["released"] += _release(released, lease)
    return dict(counts)
