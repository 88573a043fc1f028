"""Notifications drained to a local SMS endpoint: the outbox worker's throughput, with nothing lost or doubled.

    python bench/notify.py [--n 100000] [--subscribers 10000] [--batch 2000] [--workers 1]

Seeds (or reuses) ``abonent_bench_notify_<subscribers>`` (the subscribers app's data: subscribers with phones),
empties the outbox and bulk-inserts ``n`` queued SMS messages round-robin over the subscribers, each text
carrying its number. A separate process serves an SMS.ru-compatible ``/sms/send`` (asyncio + httptools, keep-alive,
``multi[<phone>]=<text>``, answers per number) and records every message number it takes. The timed part is
``send_due`` called until nothing is due, by ``--workers`` processes (each with its thread pool of requests in
flight), exactly as ``abonent notify send --loop`` runs it.

Then it checks what it timed: every row ``sent`` with the provider's id, and the server's record: ``lost`` =
messages it never took, ``duplicates`` = messages it took more than once; both must be 0.
Target (DESIGN.md §5): ≥ 1,000 messages/s on the 2-core machine, PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCH = "notify"
API_ID = "bench"


# --- the SMS endpoint (its own process) ---------------------------------------------------------------------------


def serve_sms(port: int, n: int) -> None:
    import httptools

    seen = bytearray(n)
    stats = {"taken": 0, "duplicates": 0, "requests": 0}

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""
            self.body = []

        def data_received(self, data):
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_url(self, url):
            self.url += url

        def on_body(self, body):
            self.body.append(body)

        def on_message_complete(self):
            url, body = self.url, b"".join(self.body)
            self.url, self.body = b"", []
            if url.startswith(b"/stats"):
                payload = json.dumps({**stats, "distinct": n - seen.count(0)}).encode()
            else:
                payload = self.send(body)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )

        def send(self, body: bytes) -> bytes:
            stats["requests"] += 1
            answers = {}
            for key, text in parse_qsl(body.decode()):
                if not key.startswith("multi["):
                    continue
                phone = key[6:-1]
                number = int(text.rpartition("#")[2])
                if seen[number]:
                    stats["duplicates"] += 1
                seen[number] = 1
                stats["taken"] += 1
                answers[phone] = {"status": "OK", "status_code": 100, "sms_id": f"{number:06d}-1"}
            return json.dumps({"status": "OK", "status_code": 100, "sms": answers, "balance": 1000}).encode()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main():
        server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", port, backlog=512)
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def server_stats(port: int) -> dict:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/stats", timeout=10).json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the benchmark ----------------------------------------------------------------------------------------------


def queue_messages(n: int) -> None:
    """Empty the outbox and insert ``n`` due SMS messages, round-robin over the subscribers' phones."""
    from django.db import connection

    from abonent.core import clock
    from abonent.notifications.models import Message
    from abonent.subscribers.models import ContactPoint

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE notifications_message")
        else:
            cursor.execute("DELETE FROM notifications_message")
    phones = list(
        ContactPoint.objects.filter(kind="phone", is_primary=True)
        .order_by("subscriber_id")
        .values_list("subscriber_id", "value")
    )
    now = clock.now()
    batch = []
    for i in range(n):
        subscriber_id, phone = phones[i % len(phones)]
        batch.append(
            Message(
                subscriber_id=subscriber_id,
                event="bulk",
                channel="sms",
                address=phone,
                language="ru",
                body=f"Плановые работы на сети завтра с 2:00 до 4:00. Сообщение #{i}",
                dedup_key=f"bench:{i}",
                next_attempt_at=now,
                created_at=now,
            )
        )
        if len(batch) == 5000:
            Message.objects.bulk_create(batch)
            batch = []
    if batch:
        Message.objects.bulk_create(batch)


def drain(batch: int) -> int:
    from django.db import connections

    from abonent.notifications.delivery import send_due

    sent = 0
    while counts := send_due(limit=batch):
        sent += counts.get("sent", 0)
    connections.close_all()
    return sent


def _worker(database_url: str, batch: int, settings_env: dict, out) -> None:
    os.environ.update(settings_env)
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    out.put(drain(batch))


def main() -> None:
    from _common import base_parser, emit, log, prepare

    parser = base_parser(BENCH, default_n=100_000)
    parser.add_argument("--subscribers", type=int, default=10_000, help="subscribers the messages go to")
    parser.add_argument("--batch", type=int, default=2000, help="messages claimed per send_due call")
    parser.add_argument("--workers", type=int, default=1, help="processes draining side by side")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per process")
    args = parser.parse_args()

    port = free_port()
    settings_env = {
        "ABONENT_SMS_PROVIDER": "smsru",
        "ABONENT_SMSRU_URL": f"http://127.0.0.1:{port}",
        "ABONENT_SMSRU_API_ID": API_ID,
        "ABONENT_NOTIFY_CONCURRENCY": str(args.concurrency),
        "ABONENT_LOG_LEVEL": "WARNING",
        # The worker holds SMS back in the quiet hours (21:00-09:00 by default): a run at night would send nothing.
        "ABONENT_QUIET_HOURS": "",
    }
    os.environ.update(settings_env)
    setup = prepare(
        BENCH, args.subscribers, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=("subscribers",)
    )
    log(f"queueing {args.n:,} messages")
    queue_messages(args.n)

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-sms", str(port), str(args.n)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        log(f"draining with {args.workers} worker(s), {args.concurrency} requests in flight each")
        started = time.monotonic()
        if args.workers == 1:
            sent = drain(args.batch)
        else:
            from django.db import connections

            connections.close_all()
            ctx = multiprocessing.get_context("spawn")
            out = ctx.Queue()
            procs = [
                ctx.Process(target=_worker, args=(setup.database_url, args.batch, settings_env, out))
                for _ in range(args.workers)
            ]
            for proc in procs:
                proc.start()
            sent = sum(out.get() for _ in procs)
            for proc in procs:
                proc.join()
        seconds = time.monotonic() - started
        stats = server_stats(port)
    finally:
        server.terminate()
        server.wait(timeout=10)

    from django.db.models import Count

    from abonent.notifications.models import Message

    statuses = dict(Message.objects.values_list("status").annotate(c=Count("pk")).values_list("status", "c"))
    without_id = Message.objects.filter(status="sent", provider_id="").count()
    lost = args.n - stats["distinct"]
    if statuses != {"sent": args.n} or without_id or sent != args.n:
        log(f"outbox not fully sent: {statuses}, {without_id} without a provider id, {sent} counted sent")
    emit(
        {
            "bench": BENCH,
            "engine": setup.engine,
            "n": args.n,
            "messages": args.n,
            "subscribers": args.subscribers,
            "workers": args.workers,
            "seconds": round(seconds, 2),
            "rate": round(args.n / seconds),
            "per_second": round(args.n / seconds),
            "requests": stats["requests"],
            "duplicates": stats["duplicates"],
            "lost": lost,
            "rows_not_sent": args.n - statuses.get("sent", 0),
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-sms":
        serve_sms(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
