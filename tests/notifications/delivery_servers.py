"""Local servers speaking the providers' documented protocols, for the delivery tests: SMS.ru's ``/sms/send``,
SMSC's ``send.php``/``status.php``, the Telegram Bot API's ``sendMessage``, and a small SMTP server. Each
records what it *accepted*, so a test can prove nothing was lost and nothing was sent twice."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
from collections import Counter
from email import message_from_bytes, policy

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from abonent.core import clock
from abonent.notifications.delivery import send_due

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
SMSRU_KEY = "test-api-id"


def send_at(moment: dt.datetime, **kwargs) -> dict:
    with clock.travel_to(moment):
        return send_due(**kwargs)


@pytest.fixture
def http_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


class _Fake:
    """A fake's switchable behaviour: ``ok``; ``error`` (HTTP 500, nothing taken); ``hang`` (no answer before the
    client's deadline, nothing taken); ``take_then_hang`` (taken, but the answer comes too late)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mode = "ok"
        self.hang_s = 1.2
        self.requests = 0
        self.accepted: list[tuple[str, str]] = []

    def counted(self) -> Counter:
        with self.lock:
            return Counter(self.accepted)

    def _enter(self) -> str:
        with self.lock:
            self.requests += 1
            return self.mode

    def _take(self, phone: str, text: str) -> int:
        with self.lock:
            self.accepted.append((phone, text))
            return len(self.accepted)


class FakeSmsRu(_Fake):
    """https://sms.ru/api/send: ``multi[<phone>]=<text>``, JSON answers with a status per number."""

    def __init__(self):
        super().__init__()
        self.codes: dict[str, int] = {}  # phone → status_code to answer instead of 100
        self.top_code: int | None = None  # a whole-request error (200 wrong api_id, 201 no money)

    def handler(self, request: Request) -> Response:
        mode = self._enter()
        if mode == "error":
            return Response("Service Unavailable", status=503)
        if mode == "hang":
            time.sleep(self.hang_s)
            return Response("late", status=504)
        form = request.form
        if form.get("api_id") != SMSRU_KEY or self.top_code:
            code = self.top_code or 200
            return Response(json.dumps({"status": "ERROR", "status_code": code, "status_text": "refused"}))
        numbers = {}
        for key, text in form.items(multi=True):
            match = re.fullmatch(r"multi\[(\d+)\]", key)
            if not match:
                continue
            phone = match.group(1)
            code = self.codes.get(phone, 100)
            if code == 100:
                n = self._take(phone, text)
                numbers[phone] = {"status": "OK", "status_code": 100, "sms_id": f"000000-{n:08d}"}
            else:
                numbers[phone] = {"status": "ERROR", "status_code": code, "status_text": "Неправильно указан номер"}
        if mode == "take_then_hang":
            time.sleep(self.hang_s)
        return Response(json.dumps({"status": "OK", "status_code": 100, "sms": numbers, "balance": 4122.56}))


class FakeSmsc(_Fake):
    """https://smsc.ru/api/http/: ``send.php`` (``phones``+``mes`` or ``list``, ``fmt=3``, ``op=1``, our ``id``)
    and ``status.php`` by (id, phone)."""

    def __init__(self):
        super().__init__()
        self.ids: dict[tuple[str, str], int] = {}  # (our id, phone) → taken
        self.bad_numbers: set[str] = set()
        self.lost_after_taking = False  # status.php says -3 "not found" (the request died inside SMSC)

    def send(self, request: Request) -> Response:
        mode = self._enter()
        if mode == "error":
            return Response("Bad Gateway", status=502)
        if mode == "hang":
            time.sleep(self.hang_s)
            return Response("late", status=504)
        form = request.form
        if (form.get("login"), form.get("psw")) != ("isp", "secret"):
            return Response(json.dumps({"error": "authorise error", "error_code": 2}))
        if "list" in form:
            pairs = [line.split(":", 1) for line in form["list"].split("\n")]
        else:
            pairs = [[form["phones"], form["mes"]]]
        if any(phone in self.bad_numbers for phone, _text in pairs):
            return Response(json.dumps({"error": "invalid number", "error_code": 7}))
        for phone, text in pairs:
            self._take(phone, text.replace("\\n", "\n"))
            if not self.lost_after_taking:
                self.ids[(form["id"], phone)] = 1
        if mode == "take_then_hang":
            time.sleep(self.hang_s)
        phones = [{"phone": phone, "mccmnc": "25001", "cost": "1.9", "status": 0} for phone, _t in pairs]
        return Response(json.dumps({"id": int(form["id"]), "cnt": len(pairs), "phones": phones}))

    def status(self, request: Request) -> Response:
        self._enter()
        key = (request.args.get("id", ""), request.args.get("phone", ""))
        if key in self.ids:
            return Response(json.dumps({"status": 1, "last_date": "07.12.2026 12:00:01", "last_timestamp": 1}))
        return Response(json.dumps({"status": -3, "last_date": "", "last_timestamp": 0}))


class FakeTelegram(_Fake):
    """The Bot API's ``sendMessage``; ``answers`` maps a chat id to the error answer to give it."""

    def __init__(self):
        super().__init__()
        self.answers: dict[int, tuple[int, dict]] = {}

    def handler(self, request: Request) -> Response:
        mode = self._enter()
        if mode == "error":
            return Response(json.dumps({"ok": False, "error_code": 502, "description": "Bad Gateway"}), status=502)
        body = json.loads(request.data)
        chat = int(body["chat_id"])
        if chat in self.answers:
            status, answer = self.answers[chat]
            return Response(json.dumps(answer), status=status, content_type="application/json")
        n = self._take(str(chat), body["text"])
        result = {"message_id": n, "chat": {"id": chat}, "text": body["text"]}
        return Response(json.dumps({"ok": True, "result": result}))


# --- SMTP -------------------------------------------------------------------------------------------------------


class SmtpServer:
    """aiosmtpd's SMTP server on a loopback port, keeping the messages it took; ``refuse`` lists recipients it
    answers 550. Django's SMTP backend talks to it over a real socket exactly as to a mail relay."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.refuse: set[str] = set()  # recipients answered 550
        outer = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in outer.refuse:
                    return "550 5.1.1 No such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                outer.messages.append(
                    (list(envelope.rcpt_tos), message_from_bytes(envelope.original_content, policy=policy.SMTP))
                )
                return "250 OK queued"

        # aiosmtpd's start() connects to the port it was given to check the server is up: port 0 cannot be
        # reached, so a free port is taken first.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()
