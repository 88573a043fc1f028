"""What the network app adds to subscriber search and the subscriber list: network logins, IP addresses (an open
session's or a static one) and IPoE MACs as identifiers that open the card when searched for exactly, and the
"Online" column and filter. The subscribers app renders what is registered (``subscribers.extensions``)."""

from __future__ import annotations

import ipaddress

from django.db.models import OuterRef, Subquery
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm
from abonent.subscribers.extensions import (
    IdentifierLookup,
    ListExtension,
    register_identifier_lookup,
    register_list_extension,
)

from .models import Login, LoginKind, Session, SessionStatus
from .policy import normalise_mac

ONLINE = "online"
OFFLINE = "offline"


def _login(query: str) -> list[int]:
    # The unique (kind, username) index answers with the four kinds listed.
    return list(Login.objects.filter(kind__in=LoginKind.values, username=query).values_list("subscriber_id", flat=True))


def _ip_address(query: str) -> list[int]:
    try:
        address = str(ipaddress.ip_address(query))
    except ValueError:
        return []
    online = Session.objects.filter(framed_ip=address, status=SessionStatus.OPEN, subscriber__isnull=False)
    ids = list(online.values_list("subscriber_id", flat=True))
    return ids + list(Login.objects.filter(static_ip=address).values_list("subscriber_id", flat=True))


def _ipoe_mac(query: str) -> list[int]:
    mac = normalise_mac(query)
    if not mac:
        return []
    return list(Login.objects.filter(kind=LoginKind.IPOE_MAC, username=mac).values_list("subscriber_id", flat=True))


def _annotate(qs):
    # The newest session's status: one probe of (subscriber, -started_at) per row, however long the history. A
    # subscriber is online when that session is open (an older one still open beside a newer closed one, with
    # several sessions allowed at once, is not shown; the filter below counts it).
    newest = Session.objects.filter(subscriber_id=OuterRef("pk")).order_by("-started_at", "-id")
    return qs.annotate(
        newest_session_status=Subquery(newest.values("status")[:1]),
        newest_session_ip=Subquery(newest.values("framed_ip")[:1]),
    )


def _filter(qs, value: str):
    open_sessions = Session.objects.filter(status=SessionStatus.OPEN, subscriber__isnull=False).values("subscriber_id")
    if value == ONLINE:
        return qs.filter(pk__in=open_sessions)
    if value == OFFLINE:
        return qs.exclude(pk__in=open_sessions)
    return qs


def _cell(subscriber):
    if getattr(subscriber, "newest_session_status", None) != SessionStatus.OPEN:
        return format_html('<span class="text-secondary" title="{}">—</span>', _("Offline"))
    ip = getattr(subscriber, "newest_session_ip", None) or ""
    return format_html(
        '<span class="badge text-bg-success online-badge">{}</span> <span class="small text-nowrap">{}</span>',
        _("Online"),
        ip,
    )


register_identifier_lookup(IdentifierLookup("login", _login))
register_identifier_lookup(IdentifierLookup("ip_address", _ip_address))
register_identifier_lookup(IdentifierLookup("ipoe_mac", _ipoe_mac))
register_list_extension(
    ListExtension(
        name="online",
        label=_("Online"),
        annotate=_annotate,
        filter=_filter,
        choices=lambda: [(ONLINE, _("Online")), (OFFLINE, _("Offline"))],
        cell=_cell,
        permission=Perm.NETWORK_VIEW,
        any_label=_("Online or not"),
    )
)
