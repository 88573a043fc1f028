"""Reads about online gateways: what is configured (never a secret), recent notices, checkouts."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.shortcuts import get_object_or_404

from abonent.staff.permissions import scope_to_branches
from abonent.subscribers.selectors import get_subscriber

from .. import gateways
from ..models import Checkout, CheckoutStatus, ProviderEvent


@dataclass(frozen=True)
class GatewayInfo:
    code: str
    configured: bool
    shop_id: str
    api_url: str
    networks: list[str]


def gateway_overview() -> list[GatewayInfo]:
    """The gateways this installation knows, with what staff may see of their settings: the shop id and the
    API address, never the secret key."""
    registered = set(gateways.registered())
    return [
        GatewayInfo(
            code="yookassa",
            configured="yookassa" in registered,
            shop_id=settings.ABONENT_YOOKASSA_SHOP_ID,
            api_url=settings.ABONENT_YOOKASSA_API_URL,
            networks=list(settings.ABONENT_YOOKASSA_NETWORKS),
        )
    ]


def recent_provider_events(limit: int = 50) -> list[ProviderEvent]:
    return list(ProviderEvent.objects.select_related("checkout").order_by("-received_at", "-id")[:limit])


def pending_checkouts(user, limit: int = 100) -> list[Checkout]:
    """Checkouts not finished yet, oldest first, of the subscribers in the user's branches."""
    pending = Checkout.objects.filter(status=CheckoutStatus.PENDING).select_related("subscriber")
    return list(scope_to_branches(pending, user, "subscriber__branch").order_by("created_at")[:limit])


def get_checkout(user, checkout_id: int) -> Checkout:
    """A checkout whose subscriber the user may see (404 otherwise, as for the subscriber)."""
    checkout = get_object_or_404(Checkout, pk=checkout_id)
    checkout.subscriber = get_subscriber(user, checkout.subscriber_id)
    return checkout
