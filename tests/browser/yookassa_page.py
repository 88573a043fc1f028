"""A local YooKassa for the browser tests: the API of ``tests/payments/yookassa_fake.py`` and, in addition, a test
double of YooKassa's hosted payment page.

The real flow: the portal creates a payment and redirects the payer to YooKassa's ``confirmation_url``; the payer
pays there; YooKassa sends ``payment.succeeded`` to the shop's notification URL and sends the browser back to the
``return_url``. Here ``confirmation_url`` is ``/checkout/<payment id>`` on this server: a page with the amount and
a **Pay** button. Pressing it marks the payment succeeded, delivers the notification to the demo (from 127.0.0.1,
which the demo is told to accept as YooKassa's network) and redirects the browser to the ``return_url``. It is not
YooKassa's page (no card form, no 3-D Secure): only the part of it the portal depends on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

from werkzeug import Request, Response
from werkzeug.serving import make_server

from tests.payments.yookassa_fake import SECRET, SHOP_ID, FakeYooKassa

__all__ = ["SECRET", "SHOP_ID", "HostedYooKassa", "serve"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test payment page</title></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 2rem auto; padding: 0 1rem">
<h1>Test payment page</h1>
<p>A test double of YooKassa's payment page (tests/browser/yookassa_page.py).</p>
<p>Amount: <strong data-testid="gateway-amount">{amount} {currency}</strong></p>
<p>{description}</p>
<form method="post" action="/checkout/{pid}">
  <button type="submit" style="font-size: 1.25rem; width: 100%; padding: .75rem">Pay</button>
</form>
</body></html>"""


class HostedYooKassa(FakeYooKassa):
    def __init__(self):
        super().__init__()
        self.base = ""  # this server's address, set by ``serve``
        self.notify_url = ""  # the shop's notification URL (the demo's /pay/yookassa/notifications)
        self.notices: list[int] = []  # the statuses the demo answered the notifications with

    def succeed(self, payment_id: str, *, saved: bool = False) -> dict:
        payment = super().succeed(payment_id, saved=saved)
        # Captured now (the base fake's fixed date would book the payment on another day).
        payment["captured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return payment

    def _create_payment(self, body: dict) -> tuple[int, dict]:
        status, answer = super()._create_payment(body)
        payment = self.payments[answer["id"]]
        if payment.get("confirmation", {}).get("type") == "redirect":
            payment["confirmation"]["confirmation_url"] = f"{self.base}/checkout/{payment['id']}"
        return status, self._public(payment)

    def handle(self, request: Request) -> Response:
        if match := re.fullmatch(r"/checkout/([^/]+)", request.path):
            return self._checkout_page(request, match[1])
        return super().handle(request)

    def _checkout_page(self, request: Request, pid: str) -> Response:
        payment = self.payments.get(pid)
        if payment is None or payment.get("confirmation", {}).get("type") != "redirect":
            return Response("no such payment", status=404)
        if request.method == "GET":
            page = _PAGE.format(
                pid=html.escape(pid),
                amount=html.escape(payment["amount"]["value"]),
                currency=html.escape(payment["amount"]["currency"]),
                description=html.escape(payment.get("description", "")),
            )
            return Response(page, content_type="text/html; charset=utf-8")
        return_url = payment["confirmation"]["return_url"]
        with self.lock:
            if payment["status"] == "pending":
                self.succeed(pid)
        self._notify(payment)
        return Response(status=303, headers={"Location": return_url})

    def _notify(self, payment: dict) -> None:
        """``payment.succeeded`` to the shop, as YooKassa sends it (the demo asks this server back for the truth)."""
        request = urllib.request.Request(
            self.notify_url,
            data=self.notice("payment.succeeded", payment),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                self.notices.append(response.status)
        except urllib.error.HTTPError as exc:
            self.notices.append(exc.code)


@contextlib.contextmanager
def serve() -> Iterator[HostedYooKassa]:
    """A ``HostedYooKassa`` on a free local port, in a thread; a thread per request, since a notification's handler
    asks this server back while the page's request waits for it."""
    gateway = HostedYooKassa()
    server = make_server("127.0.0.1", 0, Request.application(gateway.handle), threaded=True)
    gateway.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        thread.join(5)
