"""Screen-pop latency: calls through a local Asterisk Manager Interface to operators' SSE streams.

    python bench/screen_pop.py [--rate 200] [--seconds 60] [--operators 20] [--n 10000] [--engine postgresql]

Seeds (or reuses) ``abonent_bench_screen_pop_<n>`` (staff and subscribers with phones), gives ``--operators``
bench operators extensions 7001…, and empties the call tables. Then, as in production, three processes: the web
server (``abonent web``, uvicorn), the AMI client (``abonent telephony``) and this one, which is the PBX (an asyncio
server speaking AMI: banner, Login, events) and the operators' browsers (one SSE stream per operator, httpx).

For ``--seconds`` it starts ``--rate`` calls per second from subscribers' phones, round-robin over the extensions:
``Newchannel`` and ``DialBegin`` at once, ``DialEnd``, ``Hangup`` and ``Cdr`` (with a recording file) a second later.
Latency = the SSE event's receipt minus the moment the ``DialBegin`` was written to the socket (one clock, one
machine). Then it checks what it timed: every ring popped exactly once at the extension it rang (``lost``,
``misrouted`` and ``duplicates`` must be 0), and every call is in the database, answered, with its recording.
Target: p99 ≤ 200 ms at 200 calls/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, base_parser, emit, log, percentile, prepare

BENCH = "screen_pop"


def main() -> None:
    parser = base_parser(BENCH, default_n=10_000)
    parser.add_argument("--rate", type=int, default=200, help="calls per second (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="how long to place calls (default 60)")
    parser.add_argument("--operators", type=int, default=20, help="operators with an extension and a stream")
    args = parser.parse_args()
    setup = prepare(BENCH, args.n, engine=args.engine, reseed=args.reseed, seeded_apps=("staff", "subscribers"))

    from django.db import connection
    from django.test import Client

    from abonent.integrations.telephony.models import Call, Extension, ScreenPop, WebhookEvent
    from abonent.integrations.telephony.testing import free_port
    from abonent.staff.actions import do_create_staff_user
    from abonent.staff.models import StaffUser
    from abonent.subscribers.models import ContactPoint

    Call.subscribers.through.objects.all().delete()
    for model in (ScreenPop, WebhookEvent, Call, Extension):
        model.objects.all().delete()
    operators = []
    for i in range(args.operators):
        name = f"bench-operator-{i + 1}"
        user = StaffUser.objects.filter(username=name).first() or do_create_staff_user(
            username=name, password="bench-pass-123!", role="operator", full_name=name, branch_ids=[]
        )
        Extension.objects.create(user=user, number=str(7001 + i), created_at=user.date_joined)
        client = Client()
        client.force_login(user)
        operators.append((str(7001 + i), client.cookies["sessionid"].value))
    phones = list(ContactPoint.objects.filter(kind="phone").values_list("value", flat=True)[:5000])
    connection.close()

    env = {**os.environ, "DATABASE_URL": setup.database_url, "ABONENT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    web_port, ami_port = free_port(), free_port()
    cli = [sys.executable, "-m", "abonent.cli"]
    web = subprocess.Popen([*cli, "web", "--port", str(web_port)], env=env, cwd=ROOT)
    started: list[subprocess.Popen] = [web]

    def start_telephony() -> subprocess.Popen:
        process = subprocess.Popen(
            [*cli, "telephony", "--host", "127.0.0.1", "--port", str(ami_port)],
            env=env | {"ABONENT_AMI_SECRET": "bench-secret"},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    try:
        result = asyncio.run(run(args, operators, phones, web_port, ami_port, start_telephony))
        # The calls' lane writes behind the pops (its own process, in batches): give it time to finish.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = Call.objects.filter(status="answered", recording_file__startswith="bench/").count()
            if done >= result["sent"]:
                break
            time.sleep(0.5)
        log(f"calls recorded {time.monotonic() - deadline + 120:.1f} s after the last pop")
    finally:
        for process in started:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()

    # What was timed, checked in the database.
    rings = result["sent"]
    calls = Call.objects.count()
    answered = Call.objects.filter(status="answered", recording_file__startswith="bench/", duration_seconds=30).count()
    emit(
        {
            "bench": BENCH,
            "engine": setup.engine,
            "n": args.n,
            "rate": args.rate,
            "seconds": args.seconds,
            "operators": args.operators,
            **dict(result.items()),
            "calls_in_db": calls,
            "answered_with_recording": answered,
            "ok": result["lost"] == 0
            and result["misrouted"] == 0
            and result["duplicates"] == 0
            and calls == rings
            and answered == rings
            and (result["p99_ms"] or 1e9) <= 200,
            "seed_seconds": setup.seed_seconds,
        }
    )


async def run(args, operators, phones, web_port, ami_port, start_telephony) -> dict:
    import httpx

    from abonent.integrations.telephony.testing import incoming_call, message

    writers: list[asyncio.StreamWriter] = []
    logged_in = asyncio.Event()

    async def ami_client(reader, writer):
        writer.write(b"Asterisk Call Manager/5.0.2\r\n")
        buffer = b""
        while data := await reader.read(4096):
            buffer += data
            while b"\r\n\r\n" in buffer:
                raw, buffer = buffer.split(b"\r\n\r\n", 1)
                fields = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                if fields.get("Action") == "Login":
                    writer.write(message(Response="Success", ActionID=fields.get("ActionID", ""), Message="ok"))
                    writers.append(writer)
                    logged_in.set()
                elif fields.get("Action") == "Ping":
                    writer.write(message(Response="Success", ActionID=fields.get("ActionID", ""), Ping="Pong"))

    server = await asyncio.start_server(ami_client, "127.0.0.1", ami_port)
    base = f"http://127.0.0.1:{web_port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=5) as probe:
        while True:
            try:
                if (await probe.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the web server did not start")
            await asyncio.sleep(0.2)
    start_telephony()
    await asyncio.wait_for(logged_in.wait(), 60)
    log("AMI client logged in")

    sent_at: dict[str, tuple[float, str]] = {}
    received: dict[str, list[tuple[float, str, float]]] = {}
    opened = 0
    all_open = asyncio.Event()

    async def stream(extension: str, session: str):
        nonlocal opened
        async with (
            httpx.AsyncClient(cookies={"sessionid": session}, timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", f"{base}/staff/telephony/events/") as response,
        ):
            assert response.status_code == 200, response.status_code
            data = []
            async for line in response.aiter_lines():
                if line.startswith(": connected"):
                    opened += 1
                    if opened == len(operators):
                        all_open.set()
                if line.startswith("data:"):
                    data.append(line[5:])
                elif not line and data:
                    pop = json.loads("".join(data))
                    received.setdefault(pop["pbx_call_id"], []).append((time.time(), extension, pop["heard"]))
                    data = []

    readers = [asyncio.create_task(stream(ext, session)) for ext, session in operators]
    await asyncio.wait_for(all_open.wait(), 30)
    await asyncio.sleep(0.5)
    log(f"{len(operators)} streams open; placing {args.rate} calls/s for {args.seconds:g} s")

    writer = writers[-1]
    total = int(args.rate * args.seconds)
    later: list[tuple[float, bytes]] = []
    started = time.monotonic()
    for i in range(total):
        due = started + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        linkedid = f"{int(time.time())}.{i}"
        extension = operators[i % len(operators)][0]
        events = incoming_call(linkedid, phones[i % len(phones)], extension, recording=f"bench/{linkedid}.wav", talk=30)
        writer.write(events["new"] + events["ring"])
        sent_at[linkedid] = (time.time(), extension)
        later.append((time.monotonic() + 1.0, events["dial_end"] + events["hangup"] + events["cdr"]))
        while later and later[0][0] <= time.monotonic():
            writer.write(later.pop(0)[1])
        await writer.drain()
    for _due, data in later:
        writer.write(data)
    await writer.drain()
    elapsed = time.monotonic() - started
    log(f"placed {total} calls in {elapsed:.1f} s; waiting for the last pops")
    wait_until = time.monotonic() + 10
    while time.monotonic() < wait_until and sum(1 for k in sent_at if k in received) < total:
        await asyncio.sleep(0.1)
    # The rest of each call (answer, hang-up, CDR) must be written before the database is checked.
    await asyncio.sleep(3)
    for task in readers:
        task.cancel()
    server.close()

    latencies, misrouted, duplicates, to_writer = [], 0, 0, []
    for linkedid, (sent, extension) in sent_at.items():
        got = received.get(linkedid, [])
        if len(got) > 1:
            duplicates += 1
        if got:
            if got[0][1] != extension:
                misrouted += 1
            latencies.append((got[0][0] - sent) * 1000)
            to_writer.append((got[0][2] - sent) * 1000)
    return {
        "sent": total,
        "placed_per_second": round(total / elapsed, 1),
        "popped": len(latencies),
        "lost": total - len(latencies),
        "misrouted": misrouted,
        "duplicates": duplicates,
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        # Of which: from the socket to the pop written by ``abonent telephony`` (the rest is commit, NOTIFY, SSE).
        "p99_to_writer_ms": round(percentile(to_writer, 99), 1) if to_writer else None,
    }


if __name__ == "__main__":
    main()
