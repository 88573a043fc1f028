"""Online payment gateways behind one small interface (``base.Gateway``): YooKassa first; T-Bank and
CloudPayments plug in as siblings. ``get(code)`` returns the configured gateway."""

from .base import (
    Gateway,
    GatewayDeclined,
    GatewayError,
    GatewayPayment,
    GatewayRefund,
    Notification,
    NotificationRejected,
    get,
    our_key,
    register,
    registered,
)

__all__ = [
    "Gateway",
    "GatewayDeclined",
    "GatewayError",
    "GatewayPayment",
    "GatewayRefund",
    "Notification",
    "NotificationRejected",
    "get",
    "our_key",
    "register",
    "registered",
]
