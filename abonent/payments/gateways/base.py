"""The interface every online gateway implements, and the registry of configured gateways.

Every call that creates something at the provider carries *our* idempotence key, derived from our own record
(a checkout's id, an autopay attempt's id, a refund's id), never a random one: a retry after a timeout is then
the same request at the provider, not a second payment (the official SDKs generate a fresh key per call, which
is how they duplicate payments). Every call has a deadline. A call that times out after the provider may have
acted raises ``GatewayError(retryable=True)``; the caller finds the outcome with ``get_payment``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from django.conf import settings


def our_key(kind: str, pk) -> str:
    """Our idempotence key (and metadata mark) for one of our rows: ``<installation prefix><kind>:<id>``
    (``ABONENT_GATEWAY_KEY_PREFIX``), so that another installation on the same shop never shares it."""
    return f"{settings.ABONENT_GATEWAY_KEY_PREFIX}{kind}:{pk}"


class GatewayError(Exception):
    """The provider could not be asked or did not answer sensibly. ``retryable``: try again (same key)."""

    def __init__(self, message: str, *, retryable: bool = True, code: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class GatewayDeclined(GatewayError):
    """The provider refused the payment. ``soft``: worth retrying later (insufficient funds, a limit, the
    issuer unavailable); a hard decline (card expired, stolen, the method revoked) is not retried."""

    def __init__(self, message: str, *, soft: bool, code: str = ""):
        super().__init__(message, retryable=False, code=code)
        self.soft = soft


class NotificationRejected(Exception):
    """A notification that is not authentic (a foreign address, an object the provider does not confirm), or not
    a notification at all. ``status``: the HTTP status to answer (403 not authentic, 400 malformed)."""

    def __init__(self, message: str, *, status: int = 403):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as the provider sees it. ``status``: ``pending``, ``waiting_for_capture``, ``succeeded`` or
    ``canceled``. ``method_id`` is set when the payment method was saved for later charges."""

    id: str
    status: str
    amount: Decimal
    paid: bool = False
    confirmation_url: str = ""
    # What to show as a QR code when the provider gives data instead of a page (SBP's "qr" confirmation).
    confirmation_data: str = ""
    method_id: str = ""
    method_saved: bool = False
    method_title: str = ""
    method_type: str = ""
    decline_code: str = ""
    decline_soft: bool = False
    metadata: dict = field(default_factory=dict)
    captured_at: str = ""
    raw: dict = field(default_factory=dict)
    currency: str = ""  # the amount's currency as the provider reports it ("" when it does not say)


@dataclass(frozen=True)
class GatewayRefund:
    id: str
    status: str  # pending, succeeded, canceled
    amount: Decimal
    payment_id: str = ""
    decline_code: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """A provider's notice, parsed and checked: ``event_id`` is unique per provider (``ProviderEvent``)."""

    event_id: str
    event: str  # payment.succeeded, payment.canceled, refund.succeeded, payment_method.active…
    object_id: str
    raw: dict = field(default_factory=dict)


class Gateway(Protocol):
    code: str

    def create_payment(
        self,
        *,
        amount: Decimal,
        description: str,
        key: str,
        return_url: str,
        method_type: str | None = None,  # "bank_card", "sbp", None: the provider's page offers every method
        save_method: bool = False,
        metadata: dict | None = None,
    ) -> GatewayPayment: ...

    def charge_saved_method(
        self, *, amount: Decimal, method_id: str, description: str, key: str, metadata: dict | None = None
    ) -> GatewayPayment: ...

    def get_payment(self, payment_id: str) -> GatewayPayment: ...

    def refund(self, *, payment_id: str, amount: Decimal, key: str, description: str = "") -> GatewayRefund: ...

    def get_refund(self, refund_id: str) -> GatewayRefund: ...

    # Optional: ``list_refunds(payment_id) -> list[GatewayRefund]``, the refunds of one payment. A gateway that has
    # it lets a refund whose answer was lost be found after the provider forgot its key (gateway_refunds._look_up);
    # without it such a refund is left to staff.

    def parse_notification(self, body: bytes, headers: dict, remote_addr: str) -> Notification: ...

    def acknowledge(self, notification: Notification | None) -> tuple[int, str]:
        """The HTTP status and body the provider expects back."""
        ...


_factories: dict[str, Callable[[], Gateway]] = {}


def register(code: str, factory: Callable[[], Gateway]) -> None:
    """Make a gateway available under ``code`` (the payment channel it credits through)."""
    _factories[code] = factory


def registered() -> list[str]:
    return sorted(_factories)


def get(code: str) -> Gateway:
    try:
        factory = _factories[code]
    except KeyError:
        raise GatewayError(f"no gateway {code!r} is configured", retryable=False) from None
    return factory()
