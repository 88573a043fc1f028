"""Reads of the integrations pages."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from .models import Attempt, Delivery, DeliveryStatus, Endpoint, IntegrationToken


def endpoints_with_counts() -> QuerySet[Endpoint]:
    return Endpoint.objects.annotate(
        pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
        failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
    ).order_by("name")


def filtered_deliveries(*, endpoint=None, status: str = "", event_type: str = "", event_id=None) -> QuerySet[Delivery]:
    rows = Delivery.objects.select_related("endpoint", "event")
    if endpoint is not None:
        rows = rows.filter(endpoint=endpoint)
    if status:
        rows = rows.filter(status=status)
    if event_type:
        rows = rows.filter(event__type=event_type)
    if event_id is not None:
        rows = rows.filter(event_id=event_id)
    return rows


def attempts_of(delivery: Delivery) -> QuerySet[Attempt]:
    return Attempt.objects.filter(delivery=delivery).order_by("number")


def tokens_of(endpoint: Endpoint) -> QuerySet[IntegrationToken]:
    return IntegrationToken.objects.filter(endpoint=endpoint).select_related("token__user").order_by("-created_at")
