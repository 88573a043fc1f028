"""The audit viewer's reads (/staff/audit/): who changed what and when, filtered by person, subscriber, action
and dates, and limited to what the reader may see.

Branch scope: a user limited to some branches sees the events of those branches' subscribers, plus their own
(whatever they touched), and nothing else: not catalog or network changes made by others, which name no
subscriber. A user without a branch limit sees everything.

Subscribers are read through the app registry (``apps.get_model``), not imported: the subscribers app builds on
staff (permissions), not the other way round.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.core.audit import sealed_for
from abonent.core.audit_labels import Change, action_label, changes_of, object_type_label
from abonent.core.listing import Column
from abonent.core.models import AuditEvent

from .permissions import allowed_branch_ids

ORDERING = ("-created_at", "-id")
# Rows a subscriber filter may match by name before the operator is asked to narrow it (a name, not a crowd).
SUBSCRIBER_MATCHES = 20


def _subscribers():
    return apps.get_model("subscribers", "Subscriber")


def visible_events(user) -> QuerySet[AuditEvent]:
    """Every event ``user`` may see, newest first, with the subscriber's account number and name alongside."""
    subscribers = _subscribers()
    events = AuditEvent.objects.select_related("actor").annotate(
        subscriber_account=Subquery(
            subscribers.objects.filter(pk=OuterRef("subscriber_id")).values("account_number")[:1]
        ),
        subscriber_name=Subquery(subscribers.objects.filter(pk=OuterRef("subscriber_id")).values("display_name")[:1]),
    )
    events = events.exclude(sealed_for(user))
    branch_ids = allowed_branch_ids(user)
    if branch_ids is not None:
        in_branches = subscribers.objects.filter(branch_id__in=branch_ids).values("pk")
        events = events.filter(Q(subscriber_id__in=in_branches) | Q(actor_id=user.pk))
    return events


def find_subscriber_ids(user, text: str) -> list[int]:
    """The subscribers a filter's text names, among those the user may see: an account number exactly, else a
    name's beginning (case as typed on SQLite, any case on PostgreSQL)."""
    text = text.strip()
    subscribers = _subscribers().objects.all()
    branch_ids = allowed_branch_ids(user)
    if branch_ids is not None:
        subscribers = subscribers.filter(branch_id__in=branch_ids)
    exact = list(subscribers.filter(account_number=text).values_list("pk", flat=True)[:1]) or list(
        subscribers.filter(legacy_account=text).values_list("pk", flat=True)[:1]
    )
    if exact:
        return exact
    return list(
        subscribers.filter(display_name__istartswith=text)
        .order_by("pk")
        .values_list("pk", flat=True)[: SUBSCRIBER_MATCHES + 1]
    )


# The dates a filter may name. The first and last days Python can represent overflow when a day is added or a local
# midnight is converted to UTC; the audit log holds nothing from before 2000 or after 2100.
FILTER_DATE_MIN = dt.date(2000, 1, 1)
FILTER_DATE_MAX = dt.date(2100, 12, 31)


@dataclass(frozen=True)
class AuditFilters:
    actor_id: int | None = None
    processes: bool = False  # events of no person: the billing run, RADIUS, imports
    subscriber_ids: list[int] | None = None
    action: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filtered_events(user, filters: AuditFilters) -> QuerySet[AuditEvent]:
    events = visible_events(user)
    if filters.processes:
        events = events.filter(actor__isnull=True)
    elif filters.actor_id is not None:
        events = events.filter(actor_id=filters.actor_id)
    if filters.subscriber_ids is not None:
        events = events.filter(subscriber_id__in=filters.subscriber_ids)
    if filters.action:
        events = events.filter(action=filters.action)
    # Clamped again here, for a caller that did not come through AuditFilterForm: never an OverflowError.
    if filters.date_from is not None:
        start = min(max(filters.date_from, FILTER_DATE_MIN), FILTER_DATE_MAX)
        events = events.filter(created_at__gte=_local_midnight(start))
    if filters.date_to is not None:
        end = min(max(filters.date_to, FILTER_DATE_MIN), FILTER_DATE_MAX)
        events = events.filter(created_at__lt=_local_midnight(end + dt.timedelta(days=1)))
    return events


def _empty(value) -> bool:
    return value in (None, "", [], False)


def _value_text(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


@dataclass(frozen=True)
class ShownChange:
    """One key of an event, ready to show: ``before`` is ``None`` when there was nothing before (a creation)."""

    label: str
    before: str | None
    after: str

    @property
    def text(self) -> str:
        return f"{self.label}: {self.after}" if self.before is None else f"{self.label}: {self.before} → {self.after}"


def shown_changes(changes: list[Change]) -> list[ShownChange]:
    return [
        ShownChange(c.label, None if _empty(c.before) else _value_text(c.before), _value_text(c.after)) for c in changes
    ]


@dataclass(frozen=True)
class AuditRow:
    """An event as the viewer shows it: the action's label, the changes key by key, who did it."""

    event: AuditEvent
    label: str
    object_label: str
    changes: list[ShownChange]

    @property
    def who(self) -> str:
        actor = self.event.actor
        return (actor.get_full_name() or actor.get_username()) if actor is not None else self.event.actor_label

    @property
    def changes_text(self) -> str:
        """The changes on one line, for a spreadsheet: ``plan: Basic → Fast; credit limit: 0.00 → 300.00``."""
        return "; ".join(change.text for change in self.changes)


def audit_row(event: AuditEvent) -> AuditRow:
    return AuditRow(
        event, action_label(event.action), object_type_label(event.object_type), shown_changes(changes_of(event))
    )


def export_columns() -> list[Column]:
    return [
        Column(_("Time"), lambda r: r.event.created_at),
        Column(_("Who"), lambda r: r.who),
        Column(_("Action"), lambda r: r.label),
        Column(_("Object"), lambda r: f"{r.object_label}: {r.event.object_repr}"),
        Column(_("Account"), lambda r: r.event.subscriber_account),
        Column(_("Subscriber"), lambda r: r.event.subscriber_name),
        Column(_("Changes"), lambda r: r.changes_text),
        Column(_("Reason"), lambda r: r.event.reason),
        Column(_("IP address"), lambda r: r.event.ip_address),
        Column(_("Action code"), lambda r: r.event.action),
    ]


def export_rows(events: QuerySet[AuditEvent]) -> Iterator[AuditRow]:
    for event in events.order_by(*ORDERING).iterator(chunk_size=2000):
        yield audit_row(event)
