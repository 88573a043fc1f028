"""The terminal protocol over real HTTP: ``abonent web --workers 2`` (uvicorn) in a subprocess on a free port,
called as an agent calls it — GET and POST, Basic and parameters,
repeats racing each other over separate connections."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.payments.actions.agents import do_create_agent, do_update_agent
from abonent.payments.models import Payment, PaymentConflict
from abonent.subscribers import actions as subscribers

D = Decimal


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}/{db['NAME']}"


@pytest.fixture
def web(transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the server subprocess needs a database it can open besides the test's: PostgreSQL")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_")}
    env |= {
        "DATABASE_URL": _database_url(),
        "ABONENT_VAR_DIR": str(tmp_path),
        # Every request reads the agent afresh, so the test's changes to it apply at once.
        "ABONENT_AGENT_CACHE_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    log = open(tmp_path / "web.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "abonent.cli", "web", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.seek(0)
            pytest.fail(f"abonent web did not start:\n{log.read()}")
        time.sleep(0.2)
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()


def parse(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    return dict(re.findall(r"<(osmp_txn_id|prv_txn|sum|result|comment)>(.*?)</\1>", response.text))


def test_check_pay_repeat_conflict_and_refusals_over_http(web, admin, make_subscriber):
    agent, secret = do_create_agent(code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.1/32", acting_user=admin)
    subscriber = make_subscriber()
    closed = make_subscriber(last_name="Сидоров")
    subscribers.do_close_subscriber(closed, reason="moved", acting_user=admin)
    url = f"{web}/pay/agents/qiwi/"
    account = subscriber.account_number

    with httpx.Client(auth=("qiwi", secret), timeout=10) as client:

        def get(**params):
            return parse(client.get(url, params=params))

        assert get(command="check", txn_id="1", account=account, sum="100.00")["result"] == "0"
        first = get(command="pay", txn_id="1", account=account, sum="100.00", txn_date="20261205120000")
        assert first["result"] == "0" and first["prv_txn"]
        # The repeat, as a POST this time: the same prv_txn, nothing more credited.
        again = parse(client.post(url, data={"command": "pay", "txn_id": "1", "account": account, "sum": "100"}))
        assert (again["result"], again["prv_txn"], again["sum"]) == ("0", first["prv_txn"], "100.00")
        assert get(command="pay", txn_id="1", account=account, sum="999.00")["result"] == "300"
        assert get(command="pay", txn_id="2", account="000000000", sum="10")["result"] in ("4", "5")
        assert get(command="pay", txn_id="3", account=closed.account_number, sum="10")["result"] == "79"
        for bad in ("1e3", "-5", "abc", "100.123", "9" * 40):
            response = client.get(url, params={"command": "pay", "txn_id": "4", "account": account, "sum": bad})
            assert response.status_code == 200 and parse(response)["result"] == "300"
        huge = client.get(url, params={"command": "pay", "txn_id": "x" * 1000, "account": "ü" * 50, "sum": "1"})
        assert huge.status_code == 200 and parse(huge)["result"] == "300"

    wrong = httpx.get(url, params={"command": "check", "account": account}, auth=("qiwi", "nope"), timeout=10)
    assert wrong.status_code == 403 and parse(wrong)["result"] == "300"

    do_update_agent(agent, active=False, acting_user=admin)
    off = httpx.get(
        url, params={"command": "pay", "txn_id": "5", "account": account, "sum": "10"}, auth=("qiwi", secret)
    )
    assert parse(off)["result"] == "7"

    do_update_agent(agent, active=True, networks="10.0.0.0/8", acting_user=admin)
    foreign = httpx.get(url, params={"command": "check", "account": account}, auth=("qiwi", secret), timeout=10)
    assert foreign.status_code == 403

    assert Payment.objects.count() == 1
    assert PaymentConflict.objects.count() == 1
    assert get_balance(subscriber).balance == D("100.00")
    assert ledger.verify() == []


def test_five_identical_pays_at_once_credit_once(web, admin, make_subscriber):
    _agent, secret = do_create_agent(code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.1/32", acting_user=admin)
    subscriber = make_subscriber()
    params = {"command": "pay", "txn_id": "777", "account": subscriber.account_number, "sum": "300.00"}
    barrier = threading.Barrier(5)
    answers: list = [None] * 5

    def send(i):
        with httpx.Client(auth=("qiwi", secret), timeout=30) as client:  # a connection each
            barrier.wait(timeout=10)
            answers[i] = parse(client.get(f"{web}/pay/agents/qiwi/", params=params))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    payment = Payment.objects.get()
    assert [a["result"] for a in answers] == ["0"] * 5
    assert {a["prv_txn"] for a in answers} == {str(payment.pk)}
    assert get_balance(subscriber).balance == D("300.00")
    assert ledger.verify() == []
