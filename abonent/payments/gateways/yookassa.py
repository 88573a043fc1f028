"""YooKassa (ЮKassa) API v3 behind the gateway interface, over ``httpx`` (no SDK).

Protocol (docs/payments.md, "YooKassa"; https://yookassa.ru/developers/using-api/interaction-format):
HTTP Basic auth with the shop id and the secret key; every POST carries ``Idempotence-Key`` — ours, derived from
our own row (``checkout:<id>``, ``refund:<id>``), never random, so a retry after a timeout is the same request at
YooKassa and not a second payment (the keys live 24 hours there). Answers: 200 with the object; 202 "still
processing, repeat with the same key"; 4xx ``{"type": "error", "code", "description"}`` — our request was wrong,
retrying it as is will not help; 5xx or no answer — the outcome is unknown, retry with the same key or read the
object (https://yookassa.ru/developers/using-api/response-handling/recommendations).

Notifications are unsigned for Basic-auth shops: they are accepted only from YooKassa's published networks
(``ABONENT_YOOKASSA_NETWORKS``) and, more importantly, never trusted for their content — the caller re-reads the
object with ``get_payment``/``get_refund`` and acts on that.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from decimal import Decimal, InvalidOperation
from functools import cache
from urllib.parse import quote

import httpx
from django.conf import settings

from abonent.core.money import quantize
from abonent.payments import deadline

from .base import GatewayError, GatewayPayment, GatewayRefund, Notification, NotificationRejected

logger = logging.getLogger(__name__)

CODE = "yookassa"
METHOD_TYPES = ("bank_card", "sbp")
DESCRIPTION_MAX = 128  # YooKassa refuses a longer payment description

# cancellation_details.reason values after which trying the same method again later may work (the money, a limit
# or the issuer may be back). Every other reason is a hard decline: the card expired or is blocked, fraud was
# suspected, the subscriber revoked the saved method — retrying only annoys the issuer and the subscriber.
# Reasons: https://yookassa.ru/developers/payment-acceptance/after-the-payment/declined-payments (inferred split).
SOFT_DECLINES = frozenset(
    {
        "insufficient_funds",
        "issuer_unavailable",
        "internal_timeout",
        "payment_method_limit_exceeded",
        "general_decline",
        "3d_secure_failed",
        "expired_on_confirmation",
        "expired_on_capture",
        "canceled_by_merchant",
    }
)


def is_soft_decline(reason: str) -> bool:
    return reason in SOFT_DECLINES


@cache
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def address_trusted(address: str | None) -> bool:
    """Whether a notification from ``address`` may be YooKassa's (its published networks)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d
    return any(ip in net for net in _networks(tuple(settings.ABONENT_YOOKASSA_NETWORKS)))


def configured() -> bool:
    return bool(settings.ABONENT_YOOKASSA_SHOP_ID and settings.ABONENT_YOOKASSA_SECRET_KEY)


def _amount(data: dict | None) -> Decimal:
    try:
        return quantize(Decimal(str((data or {}).get("value", "0"))))
    except (InvalidOperation, ValueError):
        return Decimal("0.00")


def _currency(data: dict | None) -> str:
    currency = (data or {}).get("currency") if isinstance(data, dict) else None
    # Never "" for YooKassa: an amount without a currency is not one we can take as ours.
    return str(currency)[:10] if currency else "?"


def payment_of(data: dict) -> GatewayPayment:
    """Our view of a YooKassa payment object."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise GatewayError("YooKassa answered without a payment id", retryable=True, code="bad_answer")
    confirmation = data.get("confirmation") or {}
    method = data.get("payment_method") or {}
    cancellation = data.get("cancellation_details") or {}
    reason = str(cancellation.get("reason") or "")
    metadata = data.get("metadata")
    return GatewayPayment(
        id=data["id"],
        status=str(data.get("status") or ""),
        amount=_amount(data.get("amount")),
        paid=bool(data.get("paid")),
        confirmation_url=str(confirmation.get("confirmation_url") or ""),
        confirmation_data=str(confirmation.get("confirmation_data") or ""),
        method_id=str(method.get("id") or ""),
        method_saved=bool(method.get("saved")),
        method_title=str(method.get("title") or ""),
        method_type=str(method.get("type") or ""),
        decline_code=reason,
        decline_soft=is_soft_decline(reason) if reason else False,
        metadata=metadata if isinstance(metadata, dict) else {},
        captured_at=str(data.get("captured_at") or ""),
        raw=data,
        currency=_currency(data.get("amount")),
    )


def refund_of(data: dict) -> GatewayRefund:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise GatewayError("YooKassa answered without a refund id", retryable=True, code="bad_answer")
    cancellation = data.get("cancellation_details") or {}
    return GatewayRefund(
        id=data["id"],
        status=str(data.get("status") or ""),
        amount=_amount(data.get("amount")),
        payment_id=str(data.get("payment_id") or ""),
        decline_code=str(cancellation.get("reason") or ""),
        raw=data,
    )


class YooKassa:
    """One shop's YooKassa account. Built per use from the settings (``from_settings``)."""

    code = CODE

    def __init__(
        self,
        *,
        shop_id: str,
        secret_key: str,
        api_url: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        currency: str = "RUB",
    ):
        self.shop_id = shop_id
        self._secret_key = secret_key
        self.api_url = api_url.rstrip("/")
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        # The whole call, not only each read: a connect and a read timeout's worth (deadline.py).
        self.deadline = connect_timeout + read_timeout
        self.currency = currency

    @classmethod
    def from_settings(cls) -> YooKassa:
        return cls(
            shop_id=settings.ABONENT_YOOKASSA_SHOP_ID,
            secret_key=settings.ABONENT_YOOKASSA_SECRET_KEY,
            api_url=settings.ABONENT_YOOKASSA_API_URL,
            connect_timeout=settings.ABONENT_YOOKASSA_CONNECT_TIMEOUT,
            read_timeout=settings.ABONENT_YOOKASSA_READ_TIMEOUT,
            currency=settings.ABONENT_CURRENCY,
        )

    # --- the calls ------------------------------------------------------------------------------------------

    def create_payment(
        self,
        *,
        amount: Decimal,
        description: str,
        key: str,
        return_url: str,
        method_type: str | None = None,
        save_method: bool = False,
        metadata: dict | None = None,
    ) -> GatewayPayment:
        body: dict = {
            "amount": self._money(amount),
            "capture": True,  # one stage: a top-up has nothing to ship, so there is nothing to hold the money for
            "description": description[:DESCRIPTION_MAX],
            "metadata": metadata or {},
        }
        if method_type == "sbp":
            # SBP: the QR payload (an NSPK link, also openable on the phone itself) for the portal to show.
            body["confirmation"] = {"type": "qr"}
        else:
            body["confirmation"] = {"type": "redirect", "return_url": return_url}
        if method_type:
            body["payment_method_data"] = {"type": method_type}
        if save_method:
            body["save_payment_method"] = True
        return payment_of(self._call("POST", "/payments", body=body, key=key))

    def charge_saved_method(
        self, *, amount: Decimal, method_id: str, description: str, key: str, metadata: dict | None = None
    ) -> GatewayPayment:
        body = {
            "amount": self._money(amount),
            "capture": True,
            "payment_method_id": method_id,
            "description": description[:DESCRIPTION_MAX],
            "metadata": metadata or {},
        }
        return payment_of(self._call("POST", "/payments", body=body, key=key))

    def get_payment(self, payment_id: str) -> GatewayPayment:
        return payment_of(self._call("GET", f"/payments/{quote(payment_id, safe='')}"))

    def refund(self, *, payment_id: str, amount: Decimal, key: str, description: str = "") -> GatewayRefund:
        body: dict = {"payment_id": payment_id, "amount": self._money(amount)}
        if description:
            body["description"] = description[:250]
        return refund_of(self._call("POST", "/refunds", body=body, key=key))

    def get_refund(self, refund_id: str) -> GatewayRefund:
        return refund_of(self._call("GET", f"/refunds/{quote(refund_id, safe='')}"))

    def list_refunds(self, payment_id: str) -> list[GatewayRefund]:
        """The refunds of one payment (``GET /refunds?payment_id=``; https://yookassa.ru/developers/api#get_refunds_list),
        the first page (a payment has few refunds: up to the API's default page)."""
        data = self._call("GET", f"/refunds?payment_id={quote(payment_id, safe='')}")
        items = data.get("items")
        if not isinstance(items, list):
            raise GatewayError("YooKassa answered a list without items", retryable=True, code="bad_answer")
        return [refund_of(item) for item in items]

    # --- notifications --------------------------------------------------------------------------------------

    def parse_notification(self, body: bytes, headers: dict, remote_addr: str) -> Notification:
        if not address_trusted(remote_addr):
            raise NotificationRejected(f"the address {remote_addr} is not in YooKassa's networks", status=403)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise NotificationRejected("the body is not JSON", status=400) from None
        if not isinstance(data, dict) or data.get("type") != "notification":
            raise NotificationRejected("not a YooKassa notification", status=400)
        event, obj = data.get("event"), data.get("object")
        if not isinstance(event, str) or not event or not isinstance(obj, dict):
            raise NotificationRejected("the notification has no event or object", status=400)
        object_id, status = obj.get("id"), obj.get("status")
        if not isinstance(object_id, str) or not object_id or len(object_id) > 100 or not object_id.isprintable():
            raise NotificationRejected("the notification's object has no usable id", status=400)
        # YooKassa's notices carry no id of their own, and it redelivers the same notice for 24 hours until it
        # gets a 200. An object reaches each status at most once, and each event reports one status, so
        # (event, object, status) names one fact: two deliveries of it are the same event, and a notice of a
        # later status of the same object is a new one.
        event_id = f"{event}:{object_id}:{status or ''}"[:200]
        return Notification(event_id=event_id, event=event[:60], object_id=object_id, raw=data)

    def acknowledge(self, notification: Notification | None) -> tuple[int, str]:
        return 200, ""  # YooKassa reads only the status; any other is a failure it redelivers

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _money(self, amount: Decimal) -> dict:
        return {"value": f"{quantize(amount):.2f}", "currency": self.currency}

    def _call(self, method: str, path: str, *, body: dict | None = None, key: str = "") -> dict:
        headers = {"Accept": "application/json"}
        if method == "POST":
            if not key or len(key) > 64:
                raise ValueError(f"YooKassa needs an Idempotence-Key of 1-64 characters, not {key!r}")
            headers["Idempotence-Key"] = key
        try:
            with httpx.Client(auth=(self.shop_id, self._secret_key), timeout=self.timeout) as client:
                response = deadline.request(
                    client, method, self.api_url + path, deadline=self.deadline, json=body, headers=headers
                )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # No connection: the request never left us, YooKassa has not seen it.
            raise GatewayError(f"YooKassa could not be reached: {exc}", code="unreachable") from exc
        except httpx.TimeoutException as exc:
            # YooKassa may have acted: the caller repeats with the same key or reads the object.
            raise GatewayError(f"YooKassa did not answer in time ({exc.__class__.__name__})", code="timeout") from exc
        except httpx.HTTPError as exc:
            # The connection broke mid-call: YooKassa may have the request.
            raise GatewayError(f"YooKassa call failed: {exc}", code="network") from exc
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> dict:
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        if status == 200 and isinstance(data, dict):
            return data
        if status == 202:
            # "Still processing": repeat the same request with the same key after retry_after milliseconds.
            raise GatewayError("YooKassa is still processing the request", code="processing")
        error = data if isinstance(data, dict) else {}
        code = str(error.get("code") or f"http_{status}")[:60]
        message = f"YooKassa answered {status}: {error.get('description') or response.reason_phrase}"[:500]
        if status >= 500 or status == 429 or status == 200:
            # 5xx: unknown outcome; 429: too many requests; 200 without an object: garbled. All worth repeating.
            raise GatewayError(message, retryable=True, code=code)
        logger.warning("YooKassa refused a request: %s (%s)", message, code)
        raise GatewayError(message, retryable=False, code=code)


def install() -> None:
    """Offer YooKassa to the payments app: the gateway registry and the channel's refunds. Called at app ready
    when the shop is configured; the gateway is built from the settings at each use."""
    from abonent.payments import channels
    from abonent.payments.actions.gateway_refunds import start_gateway_refund

    from . import base

    base.register(CODE, YooKassa.from_settings)
    channels.register_gateway(CODE, refund=start_gateway_refund)
