"""Reads of the subscribers app."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from abonent.core.models import AuditEvent
from abonent.staff.permissions import scope_to_branches

from .models import ContactKind, ContactPoint, EquipmentAssignment, Subscriber
from .search import query_terms


@dataclass(frozen=True)
class SubscriberFilters:
    query: str = ""
    branch_id: int | None = None
    status: str = ""
    kind: str = ""
    group_id: int | None = None


@dataclass
class SearchPage:
    """One page of results. No total count: counting a million rows per keystroke is the slow part of
    search, and an operator needs "is there more", not "there are 48,213"."""

    results: list[Subscriber]
    page: int
    has_next: bool
    terms: list[str]
    query_too_short: bool = False

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def visible_subscribers(user) -> QuerySet[Subscriber]:
    return scope_to_branches(Subscriber.objects.all(), user)


def filter_subscribers(user, filters: SubscriberFilters) -> tuple[QuerySet[Subscriber], list[str], bool]:
    qs = visible_subscribers(user)
    terms = query_terms(filters.query)
    too_short = bool(filters.query.strip()) and not terms
    for term in terms:
        qs = qs.filter(search_text__contains=term)
    if filters.branch_id:
        qs = qs.filter(branch_id=filters.branch_id)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.group_id:
        qs = qs.filter(groups=filters.group_id)
    return qs, terms, too_short


def search_subscribers(user, filters: SubscriberFilters, *, page: int = 1, page_size: int | None = None) -> SearchPage:
    """The subscriber list and search: every visible subscriber matching all terms, by name."""
    page_size = page_size or settings.ABONENT_SEARCH_PAGE_SIZE
    page = max(1, page)
    qs, terms, too_short = filter_subscribers(user, filters)
    if too_short:
        return SearchPage(results=[], page=1, has_next=False, terms=[], query_too_short=True)
    primary_phones = Prefetch(
        "contacts",
        queryset=ContactPoint.objects.filter(kind=ContactKind.PHONE).order_by("-is_primary", "id"),
        to_attr="phones",
    )
    offset = (page - 1) * page_size
    rows = list(
        qs.select_related("branch")
        .prefetch_related(primary_phones, "addresses")
        .order_by("display_name", "id")
        .defer("search_text")[offset : offset + page_size + 1]
    )
    return SearchPage(results=rows[:page_size], page=page, has_next=len(rows) > page_size, terms=terms)


def get_subscriber(user, pk: int) -> Subscriber:
    """A subscriber the user may see, or 404 (not 403: do not confirm that an account exists elsewhere)."""
    subscriber = visible_subscribers(user).select_related("branch").filter(pk=pk).first()
    if subscriber is None:
        raise Http404
    return subscriber


def get_subscriber_by_account(user, account_number: str) -> Subscriber:
    subscriber = visible_subscribers(user).select_related("branch").filter(account_number=account_number).first()
    if subscriber is None:
        raise Http404
    return subscriber


def current_equipment(subscriber: Subscriber) -> list[EquipmentAssignment]:
    return list(subscriber.equipment_assignments.filter(returned_at__isnull=True).select_related("equipment"))


def equipment_history(subscriber: Subscriber) -> list[EquipmentAssignment]:
    return list(subscriber.equipment_assignments.select_related("equipment").order_by("-assigned_at"))


def subscriber_history(subscriber: Subscriber, *, limit: int = 50) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(subscriber_id=subscriber.pk).select_related("actor")[:limit])
