"""A local YooKassa (API v3) speaking the documented requests and answers, for the gateway tests.

What it implements (https://yookassa.ru/developers/api): Basic auth shop id : secret key (401 otherwise);
``POST /v3/payments`` with a required ``Idempotence-Key`` (the same key answers with the same payment, as YooKassa
does for 24 hours), redirect and qr confirmations, ``save_payment_method``; ``GET /v3/payments/{id}`` (404
``not_found``); ``POST /v3/refunds`` (a refund of a succeeded payment, within what is left) and ``GET
/v3/refunds/{id}``; errors as ``{"type": "error", "id", "code", "description"}``. Tests steer it: take the money
(``succeed``), decline (``cancel``), fail the next calls (``fail_next``), or take the money and then answer too late
(``slow_create``). It records every request (method, path, Idempotence-Key) for the assertions.

Test modules import the fixtures ``fake_fixture`` and ``yookassa_fixture`` (named ``fake`` and ``yookassa``).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import re
import threading
import time
import uuid

import pytest
from werkzeug import Request, Response

from abonent.payments import channels
from abonent.payments.actions import start_gateway_refund
from abonent.payments.gateways import base
from abonent.payments.gateways.yookassa import YooKassa

SHOP_ID = "123456"
SECRET = "test_secret_key"
YOOKASSA_ADDR = "185.71.76.5"  # in 185.71.76.0/27, one of YooKassa's published networks
FOREIGN_ADDR = "203.0.113.7"


class FakeYooKassa:
    def __init__(self):
        self.payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.keys: dict[tuple[str, str], tuple[int, dict]] = {}  # (path, key) -> the first answer
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Idempotence-Key)
        self.failures: list[int] = []  # statuses to answer the next POSTs with, first first
        self.slow_create_seconds = 0.0
        self.succeed_on_create = False
        self.refund_outcome = "succeeded"
        self.down = False  # every call answers 500
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    # --- steering ---------------------------------------------------------------------------------------------

    def fail_next(self, *statuses: int) -> None:
        self.failures.extend(statuses)

    def slow_create(self, seconds: float) -> None:
        """The next creates take the money at once and answer only after ``seconds`` (past our deadline)."""
        self.slow_create_seconds = seconds
        self.succeed_on_create = True

    def succeed(self, payment_id: str, *, saved: bool = False) -> dict:
        payment = self.payments[payment_id]
        payment.update(
            status="succeeded",
            paid=True,
            captured_at="2026-12-06T10:15:00.000Z",
            payment_method={
                "type": payment["payment_method"]["type"],
                "id": f"pm-{payment_id}",
                "saved": bool(saved and payment["_save"]),
                "title": "Bank card *4444",
            },
        )
        payment.pop("confirmation", None)
        return payment

    def cancel(self, payment_id: str, reason: str = "insufficient_funds") -> dict:
        payment = self.payments[payment_id]
        payment.update(status="canceled", cancellation_details={"party": "payment_network", "reason": reason})
        return payment

    def add_foreign_payment(self, *, status: str = "succeeded", value: str = "999.00") -> dict:
        """A payment someone else made in the same shop (the cabinet, another site): no metadata of ours."""
        pid = self._new_id()
        self.payments[pid] = {
            "id": pid,
            "status": status,
            "paid": status == "succeeded",
            "amount": {"value": value, "currency": "RUB"},
            "payment_method": {"type": "bank_card", "id": f"pm-{pid}", "saved": False},
            "metadata": {},
            "created_at": "2026-12-06T10:00:00.000Z",
            "test": True,
            "_save": False,
        }
        return self.payments[pid]

    def posts(self, path: str) -> list[str]:
        """The Idempotence-Keys of the POSTs to ``path``, in order."""
        return [key for method, p, key in self.requests if method == "POST" and p == path]

    def notice(self, event: str, obj: dict, **changes) -> bytes:
        """The body YooKassa sends: the whole object as it was when the event happened (``changes`` forge it)."""
        public = {k: v for k, v in obj.items() if not k.startswith("_")}
        return json.dumps({"type": "notification", "event": event, "object": {**public, **changes}}).encode()

    # --- the API ----------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        key = request.headers.get("Idempotence-Key", "")
        path = request.path
        with self.lock:
            self.requests.append((request.method, path, key))
        expected = "Basic " + base64.b64encode(f"{SHOP_ID}:{SECRET}".encode()).decode()
        if self.down:
            return self._error(500, "internal_server_error", "Internal server error")
        if request.headers.get("Authorization") != expected:
            return self._error(401, "invalid_credentials", "Authentication by given credentials failed")
        if request.method == "POST":
            if not key:
                return self._error(400, "invalid_request", "Idempotence-Key header is missing")
            with self.lock:
                if self.failures:
                    status = self.failures.pop(0)
                    return self._error(status, "internal_server_error" if status >= 500 else "invalid_request", "x")
                first = self.keys.get((path, key))
            if first is not None:
                return self._json(*first)
            body = request.get_json()
            if path == "/v3/payments":
                status, answer = self._create_payment(body)
            elif path == "/v3/refunds":
                status, answer = self._create_refund(body)
            else:
                return self._error(404, "not_found", "no such method")
            with self.lock:
                self.keys[(path, key)] = (status, answer)
            if path == "/v3/payments" and self.slow_create_seconds:
                time.sleep(self.slow_create_seconds)
            return self._json(status, answer)
        if match := re.fullmatch(r"/v3/payments/([^/]+)", path):
            payment = self.payments.get(match[1])
            return self._json(200, self._public(payment)) if payment else self._error(404, "not_found", "no payment")
        if path == "/v3/refunds":
            # The list of refunds, filtered by payment_id (https://yookassa.ru/developers/api#get_refunds_list).
            wanted = request.args.get("payment_id", "")
            items = [r for r in self.refunds.values() if not wanted or r["payment_id"] == wanted]
            return self._json(200, {"type": "list", "items": items})
        if match := re.fullmatch(r"/v3/refunds/([^/]+)", path):
            refund = self.refunds.get(match[1])
            return self._json(200, refund) if refund else self._error(404, "not_found", "no refund")
        return self._error(404, "not_found", "no such method")

    def _create_payment(self, body: dict) -> tuple[int, dict]:
        pid = self._new_id()
        method = (body.get("payment_method_data") or {}).get("type", "bank_card")
        confirmation = body.get("confirmation") or {}
        payment = {
            "id": pid,
            "status": "pending",
            "paid": False,
            "amount": body["amount"],
            "description": body.get("description", ""),
            "recipient": {"account_id": SHOP_ID, "gateway_id": "1"},
            "payment_method": {"type": method, "id": f"pm-{pid}", "saved": False},
            "created_at": "2026-12-06T10:00:00.000Z",
            "metadata": body.get("metadata") or {},
            "test": True,
            "refundable": False,
            "_save": bool(body.get("save_payment_method")),
        }
        if confirmation.get("type") == "redirect":
            payment["confirmation"] = {
                "type": "redirect",
                "confirmation_url": f"https://yoomoney.ru/checkout/payments/v2/contract?orderId={pid}",
                "return_url": confirmation.get("return_url"),
            }
        elif confirmation.get("type") == "qr":
            payment["confirmation"] = {"type": "qr", "confirmation_data": f"https://qr.nspk.ru/AS1000{pid}"}
        self.payments[pid] = payment
        if self.succeed_on_create:
            self.succeed(pid)
        return 200, self._public(payment)

    def _create_refund(self, body: dict) -> tuple[int, dict]:
        payment = self.payments.get(body.get("payment_id", ""))
        if payment is None or payment["status"] != "succeeded":
            return 400, {"type": "error", "code": "invalid_request", "description": "payment cannot be refunded"}
        rid = "rf-" + self._new_id()
        refund = {
            "id": rid,
            "payment_id": payment["id"],
            "status": self.refund_outcome,
            "amount": body["amount"],
            "created_at": "2026-12-06T11:00:00.000Z",
        }
        if self.refund_outcome == "canceled":
            refund["cancellation_details"] = {"party": "yoo_money", "reason": "insufficient_funds"}
        self.refunds[rid] = refund
        return 200, refund

    def _new_id(self) -> str:
        return f"2f{next(self._ids):06d}-000f-5000-9000-{uuid.uuid4().hex[:12]}"

    @staticmethod
    def _public(payment: dict) -> dict:
        return {k: v for k, v in payment.items() if not k.startswith("_")}

    @staticmethod
    def _json(status: int, body: dict) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def _error(self, status: int, code: str, description: str) -> Response:
        return self._json(status, {"type": "error", "id": str(uuid.uuid4()), "code": code, "description": description})


@pytest.fixture(name="fake")
def fake_fixture(httpserver):
    yookassa = FakeYooKassa()
    httpserver.expect_request(re.compile("^/v3/.*")).respond_with_handler(yookassa.handle)
    return yookassa


@pytest.fixture(name="yookassa")
def yookassa_fixture(settings, httpserver, fake, monkeypatch):
    """YooKassa configured against the local fake, registered as the app does at start when configured."""
    settings.ABONENT_YOOKASSA_SHOP_ID = SHOP_ID
    settings.ABONENT_YOOKASSA_SECRET_KEY = SECRET
    settings.ABONENT_YOOKASSA_API_URL = httpserver.url_for("/v3")
    settings.ABONENT_YOOKASSA_RETURN_URL = "https://lk.example.net/pay/done"
    settings.ABONENT_YOOKASSA_CONNECT_TIMEOUT = 2.0
    settings.ABONENT_YOOKASSA_READ_TIMEOUT = 2.0
    monkeypatch.setitem(base._factories, "yookassa", YooKassa.from_settings)
    monkeypatch.setitem(channels._online_refunds, "yookassa", start_gateway_refund)
    monkeypatch.setattr(channels, "_clearing_channels", channels._clearing_channels | {"yookassa"})
    return fake


def later(minutes: int = 10) -> dt.datetime:
    from abonent.core import clock

    return clock.now() + dt.timedelta(minutes=minutes)
