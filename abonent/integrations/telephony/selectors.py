"""Reads of telephony: whose number is calling, an operator's extension, a subscriber's calls, the KPIs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.db.models import Avg, Count, Q, QuerySet
from django.http import Http404

from abonent.staff.permissions import allowed_branch_ids
from abonent.subscribers.models import ContactKind, ContactPoint, Subscriber

from .models import Call, CallStatus, Extension

# How many subscribers a pop shows for one number; past it, "and more" and the search link.
MATCH_LIMIT = 5


def normalize_number(raw: str) -> str:
    """The caller's number as E.164 (``+79161234567``) when it parses as a possible number in the operator's
    region (``8 916 …``, ``916…``, ``+7 …``); "" for an extension, "anonymous", a short number or garbage.
    Possible, not valid: a PBX passes numbers of ranges ``phonenumbers`` may not know yet."""
    text = (raw or "").strip()
    if not text or len(text) > 40 or sum(c.isdigit() for c in text) < 7:
        return ""
    try:
        number = phonenumbers.parse(text, settings.ABONENT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def match_subscribers(e164: str, *, limit: int = MATCH_LIMIT + 1) -> list[Subscriber]:
    """Subscribers with ``e164`` among their phones (the indexed ``ContactPoint.value``), active ones first, at
    most ``limit``. Not branch-scoped: the pop is filtered per viewer (pops.for_viewer)."""
    if not e164:
        return []
    holders = ContactPoint.objects.filter(kind=ContactKind.PHONE, value=e164).values("subscriber_id")
    return list(Subscriber.objects.filter(pk__in=holders).order_by("status", "id")[:limit])


def holders_of(numbers: list[str], *, limit: int = MATCH_LIMIT + 1) -> dict[str, list[Subscriber]]:
    """``match_subscribers`` for many numbers in two queries: number → its subscribers, active first."""
    if not numbers:
        return {}
    pairs = list(
        ContactPoint.objects.filter(kind=ContactKind.PHONE, value__in=set(numbers)).values_list(
            "value", "subscriber_id"
        )
    )
    subscribers = Subscriber.objects.in_bulk({sid for _value, sid in pairs})
    found: dict[str, list[Subscriber]] = {}
    for value, sid in pairs:
        if sid in subscribers and subscribers[sid] not in found.setdefault(value, []):
            found[value].append(subscribers[sid])
    return {value: sorted(rows, key=lambda s: (s.status, s.pk))[:limit] for value, rows in found.items()}


def card_facts(subscriber_ids: list[int]) -> dict[int, dict]:
    """Balance (the ledger's cached column), access state and open requests of each subscriber: three queries
    however many, read on the pop's hot path (billing.selectors.get_balance and friends ask per subscriber)."""
    from abonent.billing.models import LedgerAccount
    from abonent.dunning.models import AccessState, AccessStateKind
    from abonent.helpdesk.models import OPEN_STATUSES, Ticket

    balances = dict(
        LedgerAccount.objects.filter(subscriber_id__in=subscriber_ids).values_list("subscriber_id", "balance")
    )
    states = dict(AccessState.objects.filter(subscriber_id__in=subscriber_ids).values_list("subscriber_id", "state"))
    tickets = dict(
        Ticket.objects.filter(subscriber_id__in=subscriber_ids, status__in=OPEN_STATUSES)
        .order_by()
        .values_list("subscriber_id")
        .annotate(n=Count("id"))
    )
    return {
        sid: {
            "balance": balances.get(sid, Decimal("0.00")),
            "access": states.get(sid, AccessStateKind.ACTIVE),
            "open_tickets": tickets.get(sid, 0),
        }
        for sid in subscriber_ids
    }


def extension_numbers() -> set[str]:
    return set(Extension.objects.values_list("number", flat=True))


def operator_of(extension: str):
    """The staff user whose extension this is, or None."""
    row = Extension.objects.filter(number=extension).select_related("user").first()
    return row.user if row else None


def extension_of(user) -> str | None:
    if not getattr(user, "pk", None):
        return None
    return Extension.objects.filter(user_id=user.pk).values_list("number", flat=True).first()


def calls_of(subscriber, *, limit: int = 20) -> list[Call]:
    return list(
        Call.objects.filter(subscribers=subscriber).select_related("operator", "ticket").order_by("-started_at")[:limit]
    )


def visible_call(user, pk: int) -> Call:
    """A call ``user`` may see: one of a subscriber of their branches. A call matched to nobody (an unknown
    number) only for staff without a branch limit. Else 404, like a missing one."""
    call = Call.objects.filter(pk=pk).first()
    if call is None:
        raise Http404
    ids = allowed_branch_ids(user)
    if ids is None:
        return call
    if not call.subscribers.filter(branch_id__in=ids).exists():
        raise Http404
    return call


@dataclass(frozen=True)
class OperatorKpi:
    operator_id: int | None
    operator_name: str
    calls: int
    answered: int
    missed: int
    average_handling_seconds: int | None
    tickets: int
    calls_with_ticket: int

    @property
    def calls_per_ticket(self) -> float | None:
        return round(self.calls_with_ticket / self.tickets, 2) if self.tickets else None


def operator_kpis(start: dt.datetime, end: dt.datetime) -> list[OperatorKpi]:
    """Per operator, calls started in ``[start, end)``: answered, missed (missed, busy, failed: the caller was not
    served), average handling time (talk seconds of answered calls) and calls per ticket (calls linked to a
    ticket / distinct tickets). One grouped query, however many calls."""
    rows = (
        Call.objects.filter(started_at__gte=start, started_at__lt=end)
        .order_by()
        .values("operator_id", "operator__username", "operator__full_name")
        .annotate(
            calls=Count("id"),
            answered=Count("id", filter=Q(status=CallStatus.ANSWERED)),
            missed=Count("id", filter=Q(status__in=[CallStatus.MISSED, CallStatus.BUSY, CallStatus.FAILED])),
            aht=Avg("duration_seconds", filter=Q(status=CallStatus.ANSWERED, duration_seconds__isnull=False)),
            tickets=Count("ticket_id", distinct=True),
            calls_with_ticket=Count("id", filter=Q(ticket_id__isnull=False)),
        )
        .order_by("operator__username")
    )
    return [
        OperatorKpi(
            operator_id=r["operator_id"],
            operator_name=r["operator__full_name"] or r["operator__username"] or "",
            calls=r["calls"],
            answered=r["answered"],
            missed=r["missed"],
            average_handling_seconds=round(r["aht"]) if r["aht"] is not None else None,
            tickets=r["tickets"],
            calls_with_ticket=r["calls_with_ticket"],
        )
        for r in rows
    ]


def recent_calls(user, *, limit: int = 100) -> QuerySet[Call]:
    """The latest calls ``user`` may see (visible_call's rule): a branch-limited administrator is not shown the
    numbers of other branches' subscribers, nor of unknown callers."""
    calls = Call.objects.select_related("operator").order_by("-started_at", "-id")
    ids = allowed_branch_ids(user)
    if ids is not None:
        calls = calls.filter(
            pk__in=Call.subscribers.through.objects.filter(subscriber__branch_id__in=ids).values("call_id")
        )
    return calls[:limit]
