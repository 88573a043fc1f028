"""The RFC 5176 client: sends the queued CoA-Requests and Disconnect-Requests to the NAS and records the answer.

``send_due()`` claims a batch of due requests, sends them all at once (one UDP socket each, so a NAS that
does not answer costs one timeout for the whole batch, not one per request) and records per request:

* ACK (CoA-ACK 44 / Disconnect-ACK 41) → ``acked``.
* NAK with Error-Cause 503 Session-Context-Not-Found → ``naked`` at once: the NAS has no such session, a
  retry cannot succeed. The session row is left alone: the stale-session sweeper closes it if accounting
  has really stopped, whereas closing it here would be permanent (a closed session never reopens) and
  wrong whenever the NAK came from a mismatched identity rather than a finished session.
* any other NAK, no answer, or only replies that fail the authenticator check → retried after
  ``BACKOFF_S`` (10 s, 30 s, 90 s, 270 s); after ``MAX_ATTEMPTS`` a NAK ends ``naked``, silence ``failed``.

The rows are claimed in a short transaction (``SKIP LOCKED`` on PostgreSQL) that pushes ``next_attempt_at``
out by ``LEASE``, so several workers can run this side by side and the network wait holds no row lock; a
worker that dies mid-send leaves its requests to be picked up again when the lease runs out.

Order per session: a request still waiting (or retrying) must never reach the NAS after a newer one that
changes the same thing, or an old state wins: a debt redirect NAKed and retried, then the restore on payment
ACKed, then the fifth retry of the redirect ACKed left a paying subscriber on the payment page. So a newer
request *supersedes* the older ones it covers (``supersedes``): when it is queued (``network.actions``, in
the same transaction) and again when the older one is claimed, for requests queued side by side. The answer
to a request superseded while in flight is dropped like that of an expired claim.

Errors are stored language-neutral (``CoaError`` plus a parameter); ``CoaRequest.error_text`` words them in
the reader's language.
"""

from __future__ import annotations

import datetime as dt
import logging
import selectors
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F
from pyrad import packet as radius_packet

from abonent.core import clock

from .models import CoaError, CoaKind, CoaReason, CoaRequest, CoaStatus
from .radius.codec import DICTIONARY, MalformedPacket, check_packet
from .vendors import changed_keys

logger = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 2.0
MAX_ATTEMPTS = 5
# Wait after the n-th unsuccessful attempt (n = 1..MAX_ATTEMPTS-1), in seconds: 10 · 3^(n-1).
BACKOFF_S = (10, 30, 90, 270)
# How long a claimed request stays invisible to other workers; longer than one send by a wide margin.
LEASE = dt.timedelta(seconds=60)
DEFAULT_BATCH = 200

SESSION_CONTEXT_NOT_FOUND = 503

_REQUEST_CODE = {CoaKind.COA: radius_packet.CoARequest, CoaKind.DISCONNECT: radius_packet.DisconnectRequest}
_ACK = {radius_packet.CoARequest: radius_packet.CoAACK, radius_packet.DisconnectRequest: radius_packet.DisconnectACK}
_NAK = {radius_packet.CoARequest: radius_packet.CoANAK, radius_packet.DisconnectRequest: radius_packet.DisconnectNAK}


@dataclass
class Answer:
    """What came back for one request: ``ack``, ``nak``, ``silent`` (nothing valid in time) or ``unsendable``,
    with why it failed as a ``CoaError`` and that error's language-neutral parameter (``detail``)."""

    result: str
    error_cause: int | None = None
    error: str = ""
    detail: str = ""


# --- superseding --------------------------------------------------------------------------------------------


def changes(request: CoaRequest) -> frozenset[str]:
    """What a CoA-Request changes on the session: its attributes but those that name it, each key of an AV-pair
    attribute on its own (Cisco's QoS policy and service command share ``Cisco-AVPair``)."""
    return changed_keys(request.attributes)


def supersedes(newer: CoaRequest, older: CoaRequest) -> bool:
    """Whether ``newer`` (queued later, same session) makes sending ``older`` pointless or harmful.

    * A Disconnect by staff is never superseded: someone asked for exactly that.
    * A Disconnect supersedes everything else: the session ends and re-authenticates into the state of the
      moment (the same holds for an older Disconnect, which a CoA therefore never supersedes: whenever it
      lands, the state it leads to is current).
    * A CoA supersedes an older CoA when it sets every attribute the older one sets (a restore's
      ``L4-Redirect = 0`` and speed over a restrict's ``L4-Redirect = 1`` and speed). A speed change does
      not supersede a redirect change it does not carry (Cisco's service command beside its QoS policy, both
      in ``Cisco-AVPair``): they touch different things, and both must arrive.
    """
    if older.reason == CoaReason.STAFF:
        return False
    if newer.kind == CoaKind.DISCONNECT:
        return True
    if older.kind == CoaKind.DISCONNECT:
        return False
    return changes(older) <= changes(newer)


def conflicts(newer: CoaRequest, older: CoaRequest) -> bool:
    """Whether two CoA-Requests set some of the same attributes without ``newer`` covering ``older``: sent as
    they are, a late retry of ``older`` would undo part of ``newer`` (a speed change queued while a restore
    that also carries a speed is retrying). ``network.actions`` then renders ``newer`` with the redirect too."""
    if older.kind != CoaKind.COA or newer.kind != CoaKind.COA or older.reason == CoaReason.STAFF:
        return False
    return bool(changes(older) & changes(newer)) and not changes(older) <= changes(newer)


def mark_superseded(requests: list[CoaRequest], *, now: dt.datetime) -> int:
    """End waiting requests as superseded; one still in flight has its answer dropped by ``_record``."""
    if not requests:
        return 0
    return CoaRequest.objects.filter(pk__in=[r.pk for r in requests], status=CoaStatus.PENDING).update(
        status=CoaStatus.SUPERSEDED, finished_at=now, next_attempt_at=now
    )


# --- the queue ------------------------------------------------------------------------------------------------


def send_due(*, limit: int = DEFAULT_BATCH, timeout: float = REPLY_TIMEOUT_S) -> dict[str, int]:
    """Send one batch of due requests and record the answers. Returns how many ended in each way
    (``acked``, ``naked``, ``failed``, ``retry``). Safe to run in several processes at once."""
    claimed = _claim_due(limit)
    if not claimed:
        return {}
    answers = exchange([(request, _build(request)) for request in claimed], timeout=timeout)
    counts: Counter[str] = Counter()
    for request in claimed:
        counts[_record(request, answers[request.pk])] += 1
    return dict(counts)


def _claim_due(limit: int) -> list[CoaRequest]:
    now = clock.now()
    with transaction.atomic():
        due = CoaRequest.objects.filter(status=CoaStatus.PENDING, next_attempt_at__lte=now).order_by(
            "next_attempt_at", "pk"
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.only("pk", "session_id", "subscriber_id", "kind", "reason", "attributes")[:limit])
        if not rows:
            return []
        stale = _superseded_by_newer(rows) + _paid_since(rows)
        mark_superseded(stale, now=now)
        ids = [row.pk for row in rows if row not in stale]
        # The attempt counts from the moment it is claimed: a worker that dies mid-send still used it.
        CoaRequest.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    return list(CoaRequest.objects.filter(pk__in=ids).select_related("nas").order_by("pk"))


def _paid_since(rows: list[CoaRequest]) -> list[CoaRequest]:
    """Restrict requests of subscribers no longer redirected since they were queued (dunning moved them on: paid,
    exempted, or denied access instead): sent now they would put a paying subscriber in the redirect until the
    restore, which the access sync queues at its next run (that may be after this send). They end superseded,
    by the restore (or the Disconnect) to come."""
    from abonent.dunning.selectors import redirected_subscribers

    restricts = [row for row in rows if row.reason == CoaReason.RESTRICT and row.subscriber_id is not None]
    if not restricts:
        return []
    redirected = redirected_subscribers({row.subscriber_id for row in restricts})
    return [row for row in restricts if row.subscriber_id not in redirected]


def _superseded_by_newer(rows: list[CoaRequest]) -> list[CoaRequest]:
    """The claimed rows a newer request for the same session covers. Queuing supersedes what it sees, but two
    transactions queuing for one session at once do not see each other's rows; this check does, one query."""
    sessions = {row.session_id for row in rows if row.session_id is not None}
    if not sessions:
        return []
    newer_by_session: dict[int, list[CoaRequest]] = {}
    newer = (
        CoaRequest.objects.filter(session_id__in=sessions, pk__gt=min(row.pk for row in rows))
        .exclude(status=CoaStatus.SUPERSEDED)
        .only("pk", "session_id", "kind", "reason", "attributes")
    )
    for request in newer:
        newer_by_session.setdefault(request.session_id, []).append(request)
    return [
        row
        for row in rows
        if any(n.pk > row.pk and supersedes(n, row) for n in newer_by_session.get(row.session_id, ()))
    ]


def _build(request: CoaRequest) -> radius_packet.CoAPacket | Answer:
    """The request as pyrad will encode it, or why it cannot be sent (a bug or bad data, not a NAS fault)."""
    try:
        secret = request.nas.secret.encode()
        pkt = radius_packet.CoAPacket(code=_REQUEST_CODE[request.kind], secret=secret, dict=DICTIONARY)
        # RFC 5176: the Request Authenticator is computed as for an Accounting-Request (RFC 2866 §3), and the
        # Message-Authenticator over a zeroed authenticator; CoAPacket.RequestPacket() does both.
        pkt.add_message_authenticator()
        for name, values in request.attributes.items():
            pkt.AddAttribute(name, values)
        if "Event-Timestamp" not in request.attributes:
            # RFC 5176 §3.3: with Message-Authenticator, what lets the NAS refuse a replayed request. Wall-clock
            # time (the NAS compares it with its own clock), taken at each attempt: a retry is sent afresh.
            pkt.AddAttribute("Event-Timestamp", int(time.time()))
        pkt.RequestPacket()  # encode once now so a bad value is found here, not at send time
    except Exception as exc:  # any failure to render the packet ends this request: it cannot get better
        logger.exception("CoA request %s cannot be encoded", request.pk)
        return Answer("unsendable", error=CoaError.UNENCODABLE, detail=type(exc).__name__)
    return pkt


def _record(request: CoaRequest, answer: Answer) -> str:
    """Store one answer; returns ``acked``, ``naked``, ``failed`` or ``retry``."""
    now = clock.now()
    request.error_cause = answer.error_cause
    request.last_error = answer.error
    request.error_detail = answer.detail[:255]
    last_try = request.attempts >= MAX_ATTEMPTS
    if answer.result == "ack":
        request.status, outcome = CoaStatus.ACKED, "acked"
    elif answer.result == "nak" and (answer.error_cause == SESSION_CONTEXT_NOT_FOUND or last_try):
        request.status, outcome = CoaStatus.NAKED, "naked"
    elif answer.result == "unsendable" or last_try:
        request.status, outcome = CoaStatus.FAILED, "failed"
    else:
        request.next_attempt_at = now + dt.timedelta(seconds=BACKOFF_S[min(request.attempts, len(BACKOFF_S)) - 1])
        outcome = "retry"
    if outcome != "retry":
        request.finished_at = now
        request.next_attempt_at = now
    # Only while our claim holds: a worker stalled past LEASE may have been overtaken by another that claimed
    # the request again (and counted another attempt); its answer then stands, not ours. A request superseded
    # while in flight is no longer pending either: its outcome no longer matters.
    held = CoaRequest.objects.filter(pk=request.pk, status=CoaStatus.PENDING, attempts=request.attempts).update(
        status=request.status,
        error_cause=request.error_cause,
        last_error=request.last_error,
        error_detail=request.error_detail,
        next_attempt_at=request.next_attempt_at,
        finished_at=request.finished_at,
    )
    if not held:
        logger.warning("CoA request %s: answer of an expired or superseded claim dropped (%s)", request.pk, outcome)
        return "stale"
    log = logger.info if outcome in ("acked", "retry") else logger.warning
    log(
        "CoA request %s (%s) to NAS %s: %s %s%s%s",
        request.pk,
        request.kind,
        request.nas_id,
        outcome,
        answer.error,
        f" Error-Cause {answer.error_cause}" if answer.error_cause is not None else "",
        f" {answer.detail}" if answer.detail else "",
    )
    return outcome


# --- the wire -----------------------------------------------------------------------------------------------


def exchange(
    requests: list[tuple[CoaRequest, radius_packet.CoAPacket | Answer]], *, timeout: float = REPLY_TIMEOUT_S
) -> dict[int, Answer]:
    """Send every packet from its own UDP socket and wait, all together, at most ``timeout`` seconds for
    the replies. A reply counts only if it comes from the NAS's address, matches the request's Identifier,
    has the expected code and passes pyrad's ``VerifyReply`` (Response Authenticator and, when present,
    Message-Authenticator); anything else is dropped and the wait goes on: a forged or stale datagram must
    not end the request."""
    answers: dict[int, Answer] = {}
    dropped: dict[int, str] = {}  # why the last reply was not accepted (a CoaError), if no valid one follows
    selector = selectors.DefaultSelector()
    try:
        for request, pkt in requests:
            if isinstance(pkt, Answer):
                answers[request.pk] = pkt
                continue
            address = (request.nas.ip_address, request.nas.coa_port)
            sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                # connect(): the kernel passes on only datagrams from the NAS's address and port.
                sock.connect(address)
                sock.send(pkt.RequestPacket())
            except OSError as exc:
                sock.close()
                answers[request.pk] = Answer("silent", error=CoaError.SEND_ERROR, detail=str(exc))
                continue
            selector.register(sock, selectors.EVENT_READ, (request, pkt))
        deadline = time.monotonic() + timeout
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _mask in selector.select(remaining):
                request, pkt = key.data
                answer = _read_reply(key.fileobj, pkt)
                if not isinstance(answer, Answer):
                    if answer:
                        dropped[request.pk] = answer
                    continue  # not a valid reply to this request: keep waiting for one
                answers[request.pk] = answer
                selector.unregister(key.fileobj)
                key.fileobj.close()
        for key in list(selector.get_map().values()):
            request, _pkt = key.data
            if request.pk in dropped:
                answers[request.pk] = Answer("silent", error=dropped[request.pk])
            else:
                answers[request.pk] = Answer("silent", error=CoaError.NO_ANSWER, detail=f"{timeout:g}")
            selector.unregister(key.fileobj)
            key.fileobj.close()
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()
    return answers


def _read_reply(sock: socket.socket, request: radius_packet.CoAPacket) -> Answer | str:
    """The answer a datagram gives, or why it was dropped (a ``CoaError``; "" when there was nothing to read)."""
    try:
        data = sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return ""
    except ConnectionRefusedError:
        # ICMP port unreachable for our earlier datagram: nothing listens on the CoA port.
        return Answer("silent", error=CoaError.PORT_UNREACHABLE)
    except OSError as exc:
        return Answer("silent", error=CoaError.RECEIVE_ERROR, detail=str(exc))
    try:
        check_packet(data)
        reply = radius_packet.CoAPacket(packet=data, secret=request.secret, dict=DICTIONARY)
    except (MalformedPacket, radius_packet.PacketError, KeyError, ValueError, struct.error):
        logger.warning("malformed CoA reply dropped")
        return CoaError.MALFORMED_REPLY
    if reply.code not in (_ACK[request.code], _NAK[request.code]) or not request.VerifyReply(reply, data):
        # A wrong secret on either side looks exactly like this; say so if nothing better arrives.
        logger.warning("CoA reply with code %s failed the authenticator check, dropped", reply.code)
        return CoaError.BAD_AUTHENTICATOR
    if reply.code == _ACK[request.code]:
        return Answer("ack")
    return Answer("nak", error_cause=_error_cause(reply), error=CoaError.NAK)


def _error_cause(reply: radius_packet.CoAPacket) -> int | None:
    # By attribute code: by name pyrad would turn known values into their dictionary names.
    raw = reply.get(101)
    if not raw or len(raw[0]) != 4:
        return None
    return struct.unpack("!I", raw[0])[0]
