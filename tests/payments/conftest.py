import threading

import pytest
from django.db import connections

from abonent.staff.permissions import Role


@pytest.fixture(scope="session")
def make_httpserver(httpserver_listen_address, httpserver_ssl_context):
    """pytest-httpserver's session server, threaded (its own fixture, overridden). Our calls now give up at a
    whole-call deadline (docs/payments-safeguards.md): a fake still trickling the answer a test gave up on must not
    hold the single server thread into the next test, whose fake provider would then answer nobody in time. The
    fakes lock their own state."""
    from pytest_httpserver import HTTPServer

    host, port = httpserver_listen_address
    server = HTTPServer(
        host=host or HTTPServer.DEFAULT_LISTEN_HOST,
        port=port or HTTPServer.DEFAULT_LISTEN_PORT,
        ssl_context=httpserver_ssl_context,
        threaded=True,
    )
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def cashier(make_staff):
    return make_staff(Role.CASHIER, username="cashier")


@pytest.fixture
def subscriber(make_subscriber):
    return make_subscriber()


@pytest.fixture
def together():
    """``together(f, g, ...)``: call each in its own thread at the same moment; their results (or exceptions)."""

    def run(*fns):
        barrier = threading.Barrier(len(fns))
        out = [None] * len(fns)

        def wrap(i, fn):
            try:
                barrier.wait(timeout=10)
                out[i] = fn()
            except Exception as exc:
                out[i] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=wrap, args=(i, fn)) for i, fn in enumerate(fns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return out

    return run


class FakeAtol:
    """ATOL Online API v5 as its protocol describes it (notes/payments-ru.md §2.1), on a local HTTP server.

    Tokens from ``getToken`` (``expire_tokens`` makes every one answer error 11); documents registered by
    ``external_id`` (a repeat answers error 33 with the first document's uuid); reports ``wait`` until
    ``finish`` (or at once with ``auto_done``). ``fail_next`` answers HTTP 500s, ``lose_next`` registers the
    document and answers too late for the client, ``refuse_next`` answers a validation error (32).
    """

    def __init__(self, server, *, group="v5-online-atol-ru_5179", login="v5-online-atol-ru", password="secret"):
        import re

        self.server, self.group, self.login, self.password = server, group, login, password
        self.tokens: list[str] = []
        self.valid: set[str] = set()
        self.documents: dict[str, dict] = {}
        self.by_uuid: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict | None, str]] = []
        self.auto_done = False
        self.fail_next = 0
        self.lose_next = 0
        self.refuse_next = 0
        self.duplicate_uuid = True  # whether the answer to a repeated external_id names the first document
        self.delay = 1.0
        self.answered_late = threading.Event()
        base = "/possystem/v5/"
        server.expect_request(base + "getToken", method="POST").respond_with_handler(self._get_token)
        server.expect_request(re.compile(rf"{base}([^/]+)/(sell|sell_refund)$"), method="POST").respond_with_handler(
            self._register
        )
        server.expect_request(re.compile(rf"{base}([^/]+)/report/([^/]+)$"), method="GET").respond_with_handler(
            self._report
        )
        self.url = server.url_for(base)

    @staticmethod
    def _json(body, status=200):
        import json

        from werkzeug import Response

        return Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")

    @staticmethod
    def _error(code, text, status=400, **extra):
        return FakeAtol._json(
            {
                "error": {"error_id": "e", "code": code, "text": text, "type": "system"},
                "status": "fail",
                "timestamp": "06.12.2026 12:00:00",
                **extra,
            },
            status,
        )

    def _get_token(self, request):
        import json

        body = json.loads(request.data)
        self.requests.append(("POST", "getToken", body, ""))
        if body.get("login") != self.login or body.get("pass") != self.password:
            return self._json(
                {
                    "error": {"code": 12, "text": "Неверный логин или пароль", "type": "system"},
                    "token": "",
                    "timestamp": "06.12.2026 12:00:00",
                }
            )
        token = f"tok-{len(self.tokens) + 1}"
        self.tokens.append(token)
        self.valid.add(token)
        return self._json({"error": None, "token": token, "timestamp": "06.12.2026 12:00:00"})

    def expire_tokens(self):
        self.valid.clear()

    def _authorised(self, request):
        token = request.headers.get("Token", "")
        if not token:
            return self._error(10, "Не передан токен", 401)
        if token not in self.valid:
            return self._error(11, "Срок действия токена истёк", 401)
        return None

    def _register(self, request):
        import json
        import time
        import uuid as uuids

        group, operation = request.path.rstrip("/").split("/")[-2:]
        body = json.loads(request.data, parse_float=__import__("decimal").Decimal)
        self.requests.append(("POST", operation, body, request.headers.get("Token", "")))
        if (refused := self._authorised(request)) is not None:
            return refused
        if group != self.group:
            return self._error(20, "Передан неизвестный код группы")
        if self.fail_next:
            self.fail_next -= 1
            return self._json({"error": "Internal Server Error"}, 500)
        if self.refuse_next:
            self.refuse_next -= 1
            return self._error(32, "Ошибка валидации входящего чека: не указан ИНН организации")
        external_id = body["external_id"]
        if external_id in self.documents:
            first = self.documents[external_id]
            return self._error(
                33,
                f"В системе существует чек с external_id : {external_id} и group_code: {group}",
                **({"uuid": first["uuid"]} if self.duplicate_uuid else {}),
            )
        document = {"uuid": str(uuids.uuid4()), "operation": operation, "body": body, "status": "wait"}
        self.documents[external_id] = document
        self.by_uuid[document["uuid"]] = document
        if self.auto_done:
            self.finish(document["uuid"])
        if self.lose_next:
            self.lose_next -= 1
            time.sleep(self.delay)  # accepted, but the answer comes after the client gave up
            self.answered_late.set()
        return self._json(
            {"uuid": document["uuid"], "status": "wait", "error": None, "timestamp": "06.12.2026 12:00:00"}
        )

    def finish(self, uuid, *, fail=False):
        document = self.by_uuid[uuid]
        if fail:
            document["status"] = "fail"
            document["error"] = {"code": 1, "text": "Ошибка ФН", "type": "driver"}
            return
        number = len([d for d in self.by_uuid.values() if d["status"] == "done"]) + 1
        document["status"] = "done"
        document["payload"] = {
            "total": float(document["body"]["receipt"]["total"]),
            "fns_site": "www.nalog.gov.ru",
            "fn_number": "9999078900004312",
            "shift_number": 23,
            "receipt_datetime": "31.12.2025 23:30:00",
            "fiscal_receipt_number": number,
            "fiscal_document_number": 100 + number,
            "ecr_registration_number": "0000000001002292",
            "fiscal_document_attribute": 3449555941,
        }

    def report_body(self, uuid):
        document = self.by_uuid[uuid]
        return {
            "uuid": uuid,
            "error": document.get("error"),
            "status": document["status"],
            "payload": document.get("payload"),
            "timestamp": "06.12.2026 12:00:05",
            "group_code": self.group,
            "daemon_code": "prod-agent-1",
            "device_code": "KKT014034",
            "callback_url": "",
        }

    def _report(self, request):
        uuid = request.path.rstrip("/").split("/")[-1]
        self.requests.append(("GET", "report", None, request.headers.get("Token", "")))
        if (refused := self._authorised(request)) is not None:
            return refused
        if uuid not in self.by_uuid:
            return self._error(34, "Не найден чек по uuid", 404)
        return self._json(self.report_body(uuid))

    def calls(self, kind):
        return [r for r in self.requests if r[1] == kind]


@pytest.fixture
def atol(httpserver, settings):
    from abonent.payments.fiscal.atol import forget_tokens

    fake = FakeAtol(httpserver)
    settings.ABONENT_FISCAL_PROVIDER = "atol"
    settings.ABONENT_ATOL_API_URL = fake.url
    settings.ABONENT_ATOL_LOGIN = fake.login
    settings.ABONENT_ATOL_PASSWORD = fake.password
    settings.ABONENT_ATOL_GROUP_CODE = fake.group
    settings.ABONENT_ATOL_TIMEOUT = 0.3
    settings.ABONENT_FISCAL_INN = "6950000000"
    settings.ABONENT_FISCAL_EMAIL = "kassa@isp.example"
    settings.ABONENT_FISCAL_PAYMENT_ADDRESS = "https://lk.isp.example"
    settings.ABONENT_FISCAL_SNO = "osn"
    settings.ABONENT_FISCAL_VAT = "auto"
    settings.ABONENT_FISCAL_CALLBACK_URL = "https://billing.isp.example/pay/atol/callback"
    forget_tokens()
    yield fake
    forget_tokens()
