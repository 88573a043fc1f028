"""The one rule of every portal view and API route: a subscriber sees and changes only what is theirs.

Objects are looked up through ``own(...)``, which filters by the signed-in subscriber before the id: another
subscriber's id is the same 404 as an id that does not exist, so ids cannot even be probed.
"""

from __future__ import annotations

from django.db.models import Model, QuerySet
from django.http import Http404


def own(queryset: QuerySet, request, *, field: str = "subscriber_id", **lookup) -> Model:
    """The object of ``queryset`` matching ``lookup`` that belongs to ``request.subscriber``, else 404."""
    subscriber = getattr(request, "subscriber", None)
    if subscriber is None:
        raise Http404
    try:
        return queryset.get(**{field: subscriber.pk}, **lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404 from None


def owned(queryset: QuerySet, request, *, field: str = "subscriber_id") -> QuerySet:
    """``queryset`` narrowed to ``request.subscriber``'s rows (none when nobody is signed in)."""
    subscriber = getattr(request, "subscriber", None)
    if subscriber is None:
        return queryset.none()
    return queryset.filter(**{field: subscriber.pk})
