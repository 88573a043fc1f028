"""Reads of the documents app: lists with keyset pagination, one document as a user may see it, a subscriber's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from abonent.subscribers.selectors import visible_subscribers

from .models import Document, DocumentRun

PAGE = 50


@dataclass(frozen=True)
class DocumentFilters:
    kind: str = ""
    month: dt.date | None = None  # documents whose period starts in this month
    subscriber_id: int | None = None
    before_id: int | None = None  # keyset: the page after the last id seen (newest first)


def visible_documents(user) -> QuerySet[Document]:
    """Documents of the subscribers the user sees (their branches)."""
    return Document.objects.filter(subscriber__in=visible_subscribers(user).values("pk"))


def filtered_documents(user, filters: DocumentFilters) -> QuerySet[Document]:
    """The documents ``user`` sees matching ``filters`` (all but ``before_id``), unordered."""
    qs = visible_documents(user).select_related("subscriber")
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.month:
        start = filters.month.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        qs = qs.filter(period_start__gte=start, period_start__lt=end)
    if filters.subscriber_id is not None:
        qs = qs.filter(subscriber_id=filters.subscriber_id)
    return qs


def list_documents(user, filters: DocumentFilters, *, limit: int = PAGE) -> tuple[list[Document], int | None]:
    """A page of documents, newest first, and the id to pass as ``before_id`` for the next page (or ``None``)."""
    qs = filtered_documents(user, filters)
    if filters.before_id is not None:
        qs = qs.filter(pk__lt=filters.before_id)
    rows = list(qs.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].pk if more else None)


def get_document(user, pk: int) -> Document:
    """One document, if the user sees its subscriber (404 otherwise: an id out of reach is not confirmed)."""
    document = visible_documents(user).select_related("subscriber", "corrects").filter(pk=pk).first()
    if document is None:
        raise Http404("no such document")
    return document


def documents_of(subscriber_id: int, *, limit: int = 10) -> list[Document]:
    return list(Document.objects.filter(subscriber_id=subscriber_id).order_by("-pk")[:limit])


def own_document(subscriber, pk: int) -> Document:
    """A document of the portal's subscriber; another subscriber's id is a 404."""
    document = Document.objects.filter(pk=pk, subscriber_id=subscriber.pk, status="final").first()
    if document is None:
        raise Http404("no such document")
    return document


def own_documents(subscriber, *, limit: int = 100) -> list[Document]:
    return list(Document.objects.filter(subscriber_id=subscriber.pk, status="final").order_by("-date", "-pk")[:limit])


def correction_of(document: Document) -> Document | None:
    return Document.objects.filter(corrects=document).first()


def latest_runs(limit: int = 10) -> list[DocumentRun]:
    return list(DocumentRun.objects.order_by("-pk")[:limit])
