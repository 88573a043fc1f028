"""The ``data`` of each event type, read fresh after the change committed: ids and plain values only (money as a
decimal string, moments in UTC ISO 8601, dates ISO). No personal data beyond the subscriber's display name:
passports, birth dates and contacts stay in the API, behind a token's scopes. The shapes are the JSON Schemas in
docs/webhooks/ (tests/webhooks/test_schemas.py holds every builder to them).

Each builder returns ``(key, data)`` for the events it can still describe, or nothing for rows gone since.
The key names what happened; the event id is derived from it (``WebhookEvent.id_for``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings


def moment(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def money(value) -> str:
    return f"{Decimal(value):.2f}"


_SUBSCRIBER_FIELDS = (
    "id",
    "account_number",
    "kind",
    "status",
    "display_name",
    "branch_id",
    "created_at",
    "updated_at",
    "closed_at",
)


def subscribers(ids) -> dict[int, dict]:
    from abonent.subscribers.models import Subscriber

    found = {}
    for row in Subscriber.objects.filter(pk__in=list(ids)).values(*_SUBSCRIBER_FIELDS):
        found[row["id"]] = {
            **row,
            "created_at": moment(row["created_at"]),
            "updated_at": moment(row["updated_at"]),
            "closed_at": moment(row["closed_at"]),
        }
    return found


def subscriber_created(subscriber_id: int) -> list[tuple[str, dict]]:
    row = subscribers([subscriber_id]).get(subscriber_id)
    return [] if row is None else [(f"subscriber.created:{subscriber_id}", {"subscriber": row})]


def subscriber_changed(subscriber_id: int, *, change: str, fields=()) -> list[tuple[str, dict]]:
    row = subscribers([subscriber_id]).get(subscriber_id)
    if row is None:
        return []
    fields = sorted(str(f) for f in fields or ())
    # The same change handled twice reads the same updated_at: one event. Two changes committed before the first
    # was handled read the same row too: one event that describes both (the data is read fresh anyway).
    key = f"subscriber.changed:{subscriber_id}:{row['updated_at']}:{change}:{','.join(fields)}"
    return [(key[:200], {"change": change, "fields": fields, "subscriber": row})]


def payment_received(payment_id: int) -> list[tuple[str, dict]]:
    from abonent.payments.models import Payment

    row = (
        Payment.objects.filter(pk=payment_id)
        .values(
            "id",
            "subscriber_id",
            "subscriber__account_number",
            "amount",
            "channel",
            "method",
            "status",
            "external_id",
            "received_at",
            "credited_at",
        )
        .first()
    )
    if row is None or row["status"] != "credited" or row["subscriber_id"] is None:
        # A payment that went to suspense is told when it is assigned to its subscriber (the assignment emits the
        # same domain event again); one cancelled since is not told at all.
        return []
    data = {
        "payment": {
            "id": row["id"],
            "subscriber_id": row["subscriber_id"],
            "account_number": row["subscriber__account_number"],
            "amount": money(row["amount"]),
            "currency": settings.ABONENT_CURRENCY,
            "channel": row["channel"],
            "method": row["method"],
            "status": row["status"],
            "external_id": row["external_id"],
            "received_at": moment(row["received_at"]),
            "credited_at": moment(row["credited_at"]),
        }
    }
    return [(f"payment.received:{payment_id}", data)]


def plan_changed(
    *,
    subscription_id: int,
    subscriber_id: int,
    from_plan_id: int | None,
    to_plan_id: int,
    effective_on: dt.date,
    change_id: int | None = None,
) -> list[tuple[str, dict]]:
    """``change_id``: the subscription's history row of this change, when known: a plan changed there and back and
    there again in one day is three events, not one (the key would otherwise be the same for the first and the
    third, and the CRM would miss the last)."""
    from abonent.catalog.models import Plan

    names = dict(Plan.objects.filter(pk__in=[p for p in (from_plan_id, to_plan_id) if p]).values_list("pk", "name"))
    account = subscribers([subscriber_id]).get(subscriber_id, {}).get("account_number")
    data = {
        "subscription_id": subscription_id,
        "subscriber_id": subscriber_id,
        "account_number": account,
        "from_plan": {"id": from_plan_id, "name": names.get(from_plan_id)} if from_plan_id else None,
        "to_plan": {"id": to_plan_id, "name": names.get(to_plan_id)},
        "effective_on": day(effective_on),
    }
    key = f"plan.changed:{subscription_id}:{to_plan_id}:{effective_on.isoformat()}"
    if change_id is not None:
        key += f":e{change_id}"
    return [(key, data)]


def latest_plan_change(subscription_id: int, to_plan_id: int) -> int | None:
    """The id of the subscription's newest history row of a change to ``to_plan_id``: read when the change is
    handled, so the same domain event handled twice finds the same row."""
    from abonent.billing.models import SubscriptionEvent, SubscriptionEventKind

    return (
        SubscriptionEvent.objects.filter(
            subscription_id=subscription_id, kind=SubscriptionEventKind.PLAN_CHANGED, to_plan_id=to_plan_id
        )
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )


def access_changed(subscriber_ids) -> list[tuple[str, dict]]:
    """One event per subscriber whose state is read now; keyed by the state and since when it holds, so a state
    reported twice (the event and the periodic sync) is one event."""
    from abonent.dunning.models import AccessState

    ids = sorted({int(s) for s in subscriber_ids})
    rows = {
        row["subscriber_id"]: row
        for row in AccessState.objects.filter(subscriber_id__in=ids).values(
            "subscriber_id", "state", "since", "owed", "restricted_since"
        )
    }
    accounts = subscribers(ids)
    found = []
    for subscriber_id in ids:
        if subscriber_id not in accounts:
            continue
        row = rows.get(subscriber_id)
        if row is None:
            continue  # no state row: never evaluated, nothing changed
        data = {
            "subscriber_id": subscriber_id,
            "account_number": accounts[subscriber_id]["account_number"],
            "state": row["state"],
            "since": moment(row["since"]),
            "restricted_since": moment(row["restricted_since"]),
            "owed": money(row["owed"]),
            "currency": settings.ABONENT_CURRENCY,
        }
        found.append((f"access.changed:{subscriber_id}:{row['state']}:{moment(row['since'])}", data))
    return found


_TICKET_FIELDS = (
    "id",
    "number",
    "subscriber_id",
    "subscriber__account_number",
    "category",
    "subject",
    "status",
    "priority",
    "source",
    "created_at",
    "updated_at",
    "first_response_at",
    "closed_at",
)


def _ticket(ticket_id: int) -> dict | None:
    from abonent.helpdesk.models import Ticket

    row = Ticket.objects.filter(pk=ticket_id).values(*_TICKET_FIELDS).first()
    if row is None:
        return None
    row["account_number"] = row.pop("subscriber__account_number")
    for name in ("created_at", "updated_at", "first_response_at", "closed_at"):
        row[name] = moment(row[name])
    return row


def ticket_created(ticket_id: int) -> list[tuple[str, dict]]:
    row = _ticket(ticket_id)
    return [] if row is None else [(f"ticket.created:{ticket_id}", {"ticket": row, "comment": None})]


def ticket_updated(ticket_id: int, *, comment_id: int | None) -> list[tuple[str, dict]]:
    from abonent.helpdesk.models import TicketComment

    row = _ticket(ticket_id)
    if row is None:
        return []
    comment = None
    if comment_id is not None:
        found = (
            TicketComment.objects.filter(pk=comment_id, ticket_id=ticket_id)
            .values("id", "is_public", "author_kind")
            .first()
        )
        if found is not None:
            comment = {"id": found["id"], "public": found["is_public"], "author": found["author_kind"]}
    what = f"c{comment_id}" if comment_id is not None else f"s{row['status']}"
    return [(f"ticket.updated:{ticket_id}:{what}:{row['updated_at']}", {"ticket": row, "comment": comment})]
