"""Database connections of ``abonent web``: psycopg's pool bounds them however many requests arrive at once.

Under ASGI each request runs its sync view in a thread of its own; with persistent connections (the old
``CONN_MAX_AGE=60``) every such thread left a connection open, so a burst of requests opened as many as it had
requests, up to PostgreSQL's ``max_connections`` and the "too many clients" errors past it (issue 11).
"""

from __future__ import annotations

import asyncio
import os
import runpy
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from urllib.parse import quote

import httpx
import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from abonent import settings as abonent_settings

POOL_MAX = 4
REQUESTS = 200


@pytest.fixture
def postgresql(db):
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's (SQLite opens a connection per request, in the same file)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(application_name: str) -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    return (
        f"postgres://{quote(db['USER'], safe='')}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
        f"?application_name={application_name}"
    )


@pytest.fixture
def web_server(postgresql, tmp_path):
    """``abonent web`` (uvicorn, one process) on a free port, its connections named for pg_stat_activity."""
    application_name = f"abonent-pool-test-{os.getpid()}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_")}
    env |= {
        "DATABASE_URL": _database_url(application_name),
        "ABONENT_DB_POOL_MIN": "1",
        "ABONENT_DB_POOL_MAX": str(POOL_MAX),
        "ABONENT_VAR_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    log = open(tmp_path / "web.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "abonent.cli", "web", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.seek(0)
            pytest.fail(f"abonent web did not start:\n{log.read()}")
        time.sleep(0.2)
    try:
        yield {"base": base, "application_name": application_name, "log": log}
    finally:
        process.terminate()
        try:
            process.wait(15)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()


class ConnectionCounter(threading.Thread):
    """Counts the server's connections in pg_stat_activity every few milliseconds, keeping the largest count."""

    def __init__(self, application_name: str) -> None:
        super().__init__(name="pg-stat-activity", daemon=True)
        self.application_name = application_name
        db = connection.settings_dict  # read here: the thread's own ``connection`` would be another wrapper
        self.params = {
            "dbname": db["NAME"],
            "user": db["USER"],
            "password": db["PASSWORD"] or None,
            "host": db["HOST"] or "127.0.0.1",
            "port": db["PORT"] or 5432,
        }
        self.peak = 0
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(**self.params, autocommit=True) as conn:
            while not self.stop.is_set():
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [self.application_name]
                ).fetchone()
                self.peak = max(self.peak, count)
                self.samples += 1
                time.sleep(0.002)


async def _burst(base: str, n: int) -> list[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        responses = await asyncio.gather(*(client.get("/healthz") for _ in range(n)))
    return [response.status_code for response in responses]


@pytest.mark.slow
def test_200_concurrent_requests_keep_the_servers_connections_within_the_pool(web_server):
    # Given a running server whose pool may hold POOL_MAX connections
    counter = ConnectionCounter(web_server["application_name"])
    counter.start()
    try:
        # When 200 requests that each query the database arrive at once
        statuses = asyncio.run(_burst(web_server["base"], REQUESTS))
        time.sleep(0.2)  # connections a request left open would still be counted now
    finally:
        counter.stop.set()
        counter.join(10)

    # Then every one is answered, and the server never held more connections than the pool allows
    web_server["log"].seek(0)
    assert Counter(statuses) == {200: REQUESTS}, web_server["log"].read()[-2000:]
    assert counter.samples > 10
    assert 1 <= counter.peak <= POOL_MAX


def _settings_with(monkeypatch, **environ) -> dict:
    """The settings module as a process started with this environment reads it."""
    for name in ("ABONENT_DB_POOL_MIN", "ABONENT_DB_POOL_MAX", "ABONENT_DB_POOL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(abonent_settings.__file__)["DATABASES"]["default"]


def test_postgresql_takes_connections_from_a_bounded_pool_with_a_deadline(monkeypatch):
    database = _settings_with(monkeypatch, DATABASE_URL="postgres://abonent@db.example:5432/abonent")
    assert database["CONN_MAX_AGE"] == 0
    assert database["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 10.0}


def test_pool_size_and_deadline_come_from_the_environment(monkeypatch):
    database = _settings_with(
        monkeypatch,
        DATABASE_URL="postgres://abonent@db.example:5432/abonent?application_name=web",
        ABONENT_DB_POOL_MIN="0",
        ABONENT_DB_POOL_MAX="25",
        ABONENT_DB_POOL_TIMEOUT="2.5",
    )
    assert database["OPTIONS"] == {"application_name": "web", "pool": {"min_size": 0, "max_size": 25, "timeout": 2.5}}


def test_a_pool_of_one_keeps_no_more_idle_than_it_may_hold(monkeypatch):
    database = _settings_with(monkeypatch, DATABASE_URL="postgres://abonent@db/abonent", ABONENT_DB_POOL_MAX="1")
    assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 1, "timeout": 10.0}


def test_pool_max_zero_turns_the_pool_off_without_persistent_connections(monkeypatch):
    database = _settings_with(monkeypatch, DATABASE_URL="postgres://abonent@db/abonent", ABONENT_DB_POOL_MAX="0")
    assert database["CONN_MAX_AGE"] == 0
    assert "pool" not in database.get("OPTIONS", {})


@pytest.mark.parametrize(
    "environ",
    [
        {"ABONENT_DB_POOL_MIN": "11"},
        {"ABONENT_DB_POOL_MAX": "-1"},
        {"ABONENT_DB_POOL_TIMEOUT": "0"},
        {"ABONENT_DB_POOL_MAX": "ten"},
    ],
)
def test_a_pool_setting_out_of_range_refuses_to_start(monkeypatch, environ):
    with pytest.raises(ImproperlyConfigured, match="ABONENT_DB_POOL_"):
        _settings_with(monkeypatch, DATABASE_URL="postgres://abonent@db/abonent", **environ)


def test_sqlite_is_unchanged_by_the_pool_settings(monkeypatch, tmp_path):
    database = _settings_with(monkeypatch, DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}", ABONENT_DB_POOL_MAX="4")
    assert database["CONN_MAX_AGE"] == 0
    assert database["OPTIONS"] == {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
