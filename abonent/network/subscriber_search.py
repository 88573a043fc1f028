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
from abonent.subscribers.models import SubscriberStatus

from .models import Login, LoginKind, Session, SessionStatus
from .policy import normalise_mac

ONLINE = "online"
OFFLINE = "offline"


def _login(query: str) -> list[int]:
    # The unique (kind, username) index answers with the four kinds listed.
    return list(Login.objects.filter(kind__in=LoginKind.values, username=query).values_list("subscriber_id", flat=True))


def _ip_address(query: str) -> list[int]:
    """Who holds the address now: the newest open session's subscriber, an open account's before a closed one's
    (a NAS that never sent the stop leaves a closed account's session "open" for ever), and a static address's
    login."""
    try:
        address = str(ipaddress.ip_address(query))
    except ValueError:
        return []
    sessions = Session.objects.filter(framed_ip=address, status=SessionStatus.OPEN, subscriber__isnull=False)
    newest = sessions.order_by("-started_at", "-id").values_list("subscriber_id", flat=True)
    holder = newest.exclude(subscriber__status=SubscriberStatus.CLOSED).first() or newest.first()
    static = list(Login.objects.filter(static_ip=address).values_list("subscriber_id", flat=True))
    return [holder, *static] if holder is not None else static


def _ipoe_mac(query: str) -> list[int]:
    mac = normalise_mac(query)
    if not mac:
        return []
    return list(Login.objects.filter(kind=LoginKind.IPOE_MAC, username=mac).values_list("subscriber_id", flat=True))


def _open_sessions():
    return Session.objects.filter(status=SessionStatus.OPEN, subscriber__isnull=False)


def _annotate(qs):
    # Online means an open session, any (several at once are allowed), as the filter below counts it: the newest
    # open one's address is shown. One probe of (subscriber, -started_at) per row of the page.
    newest_open = _open_sessions().filter(subscriber_id=OuterRef("pk")).order_by("-started_at", "-id")
    return qs.annotate(
        open_session_id=Subquery(newest_open.values("id")[:1]),
        open_session_ip=Subquery(newest_open.values("framed_ip")[:1]),
    )


def _filter(qs, value: str):
    open_sessions = _open_sessions().values("subscriber_id")
    if value == ONLINE:
        return qs.filter(pk__in=open_sessions)
    if value == OFFLINE:
        return qs.exclude(pk__in=open_sessions)
    return qs


def _cell(subscriber):
    if getattr(subscriber, "open_session_id", None) is None:
        return format_html('<span class="text-secondary" title="{}">—</span>', _("Offline"))
    ip = getattr(subscriber, "open_session_ip", None) or ""
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
