"""Who an incident affects, computed in SQL and stored as ``IncidentSubscriber`` rows; and the tickets to link.

A subscriber is affected when it uses a linked NAS (a session open on it, or one updated within ``NAS_RECENT``
before the incident started: a NAS that went down closes its sessions, and its subscribers are the ones who were on
it), or when one of its service addresses lies in an area (a city, a street, or a range of house numbers on a
street). Closed accounts are not affected. The set is one query; storing it is one DELETE of the rows no longer in
it and one INSERT … SELECT of the missing ones, whatever its size: no row goes through Python.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import CharField, Func, IntegerField, Q, QuerySet

from abonent.helpdesk.models import Ticket, TicketCategory
from abonent.network.models import Session, SessionStatus
from abonent.subscribers.models import Address, AddressKind, Subscriber, SubscriberStatus

from .models import Incident, IncidentSubscriber, IncidentTicket

# Who was on a NAS: a session updated this long before the incident started still counts (the NAS's interim updates
# come every few minutes; a subscriber whose router was off for the weekend is still its subscriber).
NAS_RECENT = dt.timedelta(days=7)
# Tickets about these are what an outage causes; a billing question of an affected subscriber is not linked.
LINKED_CATEGORIES = (TicketCategory.NO_CONNECTION, TicketCategory.SLOW_SPEED)


class HouseNumber(Func):
    """The leading number of a house as typed ("12" of "12/1", "12к2", "12 А"), NULL when it starts with no digit.
    PostgreSQL: a regular expression; SQLite: CAST, which reads the leading digits, with a GLOB for "none"."""

    output_field = IntegerField()
    arity = 1

    def as_postgresql(self, compiler, conn, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(substring(btrim({sql}) from '^[0-9]{{1,9}}'))::integer", params

    def as_sqlite(self, compiler, conn, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(CASE WHEN trim({sql}) GLOB '[0-9]*' THEN CAST(trim({sql}) AS INTEGER) END)", [*params, *params]


class Lowered(Func):
    """``LOWER(text)`` that lowers every letter on both engines: SQLite's own ``LOWER`` knows only ASCII ("Ленина"
    would stay as it is), so there it calls ``incidents_lower`` (Python's ``str.lower``), which ``apps.py`` adds to
    each SQLite connection."""

    function = "LOWER"
    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(compiler, conn, function="incidents_lower", **extra)


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "incidents_lower", 1, lambda text: text.lower() if isinstance(text, str) else text, deterministic=True
        )


def _address_condition(incident: Incident) -> Q | None:
    condition = None
    for area in incident.areas.all():
        part = Q(city_lower=area.city.strip().lower())
        if area.street:
            part &= Q(street_lower=area.street.strip().lower())
        if area.house_from is not None:
            part &= Q(house_number__gte=area.house_from, house_number__lte=area.house_to)
        condition = part if condition is None else condition | part
    return condition


def affected_subscriber_ids(incident: Incident) -> QuerySet:
    """The ids of the subscribers ``incident`` affects now, as one query (``values("pk")``: its column is named
    ``pk``), for counting, storing or reading in chunks."""
    conditions = []
    nas_ids = list(incident.nas.values_list("pk", flat=True))
    if nas_ids:
        on_nas = (
            Session.objects.filter(nas_id__in=nas_ids, subscriber_id__isnull=False)
            .filter(Q(status=SessionStatus.OPEN) | Q(updated_at__gte=incident.starts_at - NAS_RECENT))
            .order_by()
            .values("subscriber_id")
        )
        conditions.append(Q(pk__in=on_nas))
    where = _address_condition(incident)
    if where is not None:
        in_area = (
            Address.objects.filter(kind=AddressKind.SERVICE)
            .annotate(house_number=HouseNumber("house"), city_lower=Lowered("city"), street_lower=Lowered("street"))
            .filter(where)
            .order_by()
            .values("subscriber_id")
        )
        conditions.append(Q(pk__in=in_area))
    if not conditions:
        return Subscriber.objects.none().values("pk")
    matched = conditions[0]
    for condition in conditions[1:]:
        matched |= condition
    return Subscriber.objects.filter(matched).exclude(status=SubscriberStatus.CLOSED).order_by().values("pk")


def _execute(sql: str, params) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def store_affected(incident: Incident, now: dt.datetime) -> int:
    """Make the stored set equal the computed one; returns its size. The caller holds the incident's row lock, so two
    recomputations of one incident do not interleave (the unique (incident, subscriber) is the backstop)."""
    ids = affected_subscriber_ids(incident)
    IncidentSubscriber.objects.filter(incident=incident).exclude(subscriber_id__in=ids).delete()
    try:
        select_sql, select_params = ids.query.sql_with_params()
    except EmptyResultSet:  # neither a NAS nor an area: nobody
        return 0
    table = IncidentSubscriber._meta.db_table
    _execute(
        f"INSERT INTO {table} (incident_id, subscriber_id, created_at) "
        f"SELECT %s, a.pk, %s FROM ({select_sql}) a "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.incident_id = %s AND x.subscriber_id = a.pk)",
        [incident.pk, now, *select_params, incident.pk],
    )
    return IncidentSubscriber.objects.filter(incident=incident).count()


def tickets_to_link(incident: Incident) -> QuerySet:
    """Tickets of the affected about a connection or speed opened while the incident lasted (or lasts)."""
    tickets = Ticket.objects.filter(
        category__in=LINKED_CATEGORIES,
        created_at__gte=incident.starts_at,
        subscriber_id__in=IncidentSubscriber.objects.filter(incident=incident).values("subscriber_id"),
    )
    if incident.ends_at is not None:
        tickets = tickets.filter(created_at__lte=incident.ends_at)
    return tickets.order_by().values("pk")


def unlink_stale_tickets(incident: Incident) -> int:
    """Drop the links ``tickets_to_link`` no longer names: an incident narrowed (a street corrected, a start moved
    later) drops subscribers from its set, and their requests leave its page with them. One DELETE."""
    return IncidentTicket.objects.filter(incident=incident).exclude(ticket_id__in=tickets_to_link(incident)).delete()[0]


def link_tickets(incident: Incident, now: dt.datetime, *, only_ticket_id: int | None = None) -> int:
    """Link the tickets ``tickets_to_link`` names that are not linked yet (all of them, or the one given); returns
    how many were linked now. Safe to run twice and concurrently: the unique (incident, ticket) drops a repeat."""
    tickets = tickets_to_link(incident)
    if only_ticket_id is not None:
        tickets = tickets.filter(pk=only_ticket_id)
    try:
        select_sql, select_params = tickets.query.sql_with_params()
    except EmptyResultSet:
        return 0
    table = IncidentTicket._meta.db_table
    return _execute(
        f"INSERT INTO {table} (incident_id, ticket_id, linked_at) "
        f"SELECT %s, t.pk, %s FROM ({select_sql}) t "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.incident_id = %s AND x.ticket_id = t.pk) "
        "ON CONFLICT DO NOTHING",
        [incident.pk, now, *select_params, incident.pk],
    )
