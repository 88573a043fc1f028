"""What other apps add to the subscriber card's header and to the subscriber list, without this app knowing them.

* ``register_badge(Badge(...))``: a badge beside the subscriber's name on the card (dunning's access state). A
  badge with ``replaces_status`` stands in for the green "Active" of an open account: an account can be open
  and its access cut, and the card must not say "Active" then.
* ``register_header_item(HeaderItem(...))``: a part of the card's header, which stays on screen while the panels
  scroll under it (billing's plan, balance and next charge; network's online state). ``render(request,
  subscriber)`` returns its HTML or None; the items are shown in ``order``.
* ``register_list_extension(ListExtension(...))``: a column and a filter of the list. ``annotate(queryset)``
  adds what the column shows to the page's one query (a subquery, never a query per row); ``filter(queryset,
  value)`` narrows the list by one of ``choices``; ``cell(subscriber)`` renders the annotated value.

* ``register_identifier_lookup(IdentifierLookup(...))``: an identifier that names one subscriber exactly (an
  account or contract number, a phone, a network login, an IP address, a MAC). A search for exactly that
  value opens the subscriber's card instead of listing (``selectors.find_by_identifier``).

Badges and list extensions are shown only to users holding ``permission``. Like ``panels``, the apps register
at ``ready()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.safestring import SafeString


@dataclass(frozen=True)
class Badge:
    name: str
    # (request, subscriber) → HTML of the badge, or None for none.
    render: Callable[..., SafeString | None]
    permission: str | None = None
    replaces_status: bool = False


@dataclass(frozen=True)
class HeaderItem:
    name: str
    order: int
    # (request, subscriber) → HTML of the item, or None for none.
    render: Callable[..., SafeString | None]
    permission: str | None = None


@dataclass(frozen=True)
class ListExtension:
    name: str  # the query parameter of its filter
    label: str  # the column's and the filter's label
    annotate: Callable[[QuerySet], QuerySet]
    filter: Callable[[QuerySet, str], QuerySet]
    choices: Callable[[], list[tuple[str, str]]]
    cell: Callable[..., SafeString]  # (subscriber) → HTML of the cell, from what ``annotate`` added
    permission: str | None = None
    any_label: str = ""  # the filter's "any" entry
    # The cell stands in for the green "Active" of an open account in the list's status column (dunning's access
    # state: an open account whose access is cut must not read "Active"), and has no column of its own.
    replaces_status: bool = False


@dataclass(frozen=True)
class IdentifierLookup:
    name: str
    # The typed query (stripped) → ids of the subscribers whose identifier of this kind equals it, normalised as
    # the identifier is stored; nothing when the query cannot be one. Each call is one indexed query at most.
    find: Callable[[str], Iterable[int]]


_badges: dict[str, Badge] = {}
_list_extensions: dict[str, ListExtension] = {}
_identifier_lookups: dict[str, IdentifierLookup] = {}
_header_items: dict[str, HeaderItem] = {}


def _visible(items, user) -> list:
    return [i for i in items if i.permission is None or user.has_perm(i.permission)]


def register_badge(badge: Badge) -> Badge:
    _badges[badge.name] = badge
    return badge


def badges_for(user) -> list[Badge]:
    return _visible(_badges.values(), user)


def render_badges(request, subscriber) -> tuple[list[SafeString], bool]:
    """The card header's badges, and whether one of them stands in for the account status."""
    rendered, replaces = [], False
    for badge in badges_for(request.user):
        html = badge.render(request, subscriber)
        if html:
            rendered.append(html)
            replaces = replaces or badge.replaces_status
    return rendered, replaces


def register_header_item(item: HeaderItem) -> HeaderItem:
    _header_items[item.name] = item
    return item


def render_header_items(request, subscriber) -> list[SafeString]:
    """The card header's items from other apps the user may see, in their order."""
    items = sorted(_visible(_header_items.values(), request.user), key=lambda i: i.order)
    return [html for html in (item.render(request, subscriber) for item in items) if html]


def register_list_extension(extension: ListExtension) -> ListExtension:
    _list_extensions[extension.name] = extension
    return extension


def list_extensions_for(user) -> list[ListExtension]:
    return _visible(_list_extensions.values(), user)


def list_extension(name: str) -> ListExtension | None:
    return _list_extensions.get(name)


def register_identifier_lookup(lookup: IdentifierLookup) -> IdentifierLookup:
    _identifier_lookups[lookup.name] = lookup
    return lookup


def identifier_lookups() -> list[IdentifierLookup]:
    return list(_identifier_lookups.values())
