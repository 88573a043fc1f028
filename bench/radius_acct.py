"""RADIUS Accounting Interim-Update (answered after commit) against ``abonent radius``.

    python bench/radius_acct.py [--n 100000] [--processes P] [--inflight 50] [--requests R] [--interims-only]

Seeds (or reuses) ``abonent_bench_radius_<n>`` (bench/_radius.py), starts ``abonent radius`` as a subprocess
against it, and for each measurement opens R distinct sessions with an untimed Accounting Start (unless
``--interims-only``: the server upserts) and then times one Interim-Update per session (Acct-Session-Id,
User-Name, NAS-IP-Address, Acct-Session-Time, octets + gigawords, Framed-IP-Address):

1. FreeRADIUS's radclient: ``radclient -q -p <inflight> -s -f FILE 127.0.0.1:PORT acct SECRET``.
2. The load generator (bench/_radius.py): rate, p50/p99, its own CPU time.
3. A burst of ``--burst`` interims sent at once; answers counted, kernel drops from /proc/net/snmp.

Afterwards the database must hold exactly one session row per session sent, with the interim's counters,
and the daily usage must equal the sum of the counters (``lost`` and ``duplicates`` both 0).
Target (DESIGN.md §5): ≥ 6,000/s, nothing lost, deduplicated (FreeRADIUS + rlm_sql: 2,400–2,500/s as the issue
measured it; bench/freeradius_peer.py measures it on this machine).
Progress goes to stderr; the last line on stdout is the JSON result.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _radius as R
from _common import emit, log

BENCH = "radius_acct"
PEER_RATE = 2450
START, INTERIM = 1, 3
GIGA = 2**32


def counters(i: int) -> tuple[int, int, int]:
    """(session time, input octets, output octets) of session i's interim: some above 4 GiB (gigawords)."""
    return 300 + i % 600, (i % 7) * GIGA + 1_000_000 + i * 37, (i % 11) * GIGA + 9_000_000 + i * 101


def framed_ip(i: int) -> str:
    return f"100.{64 + (i >> 16) % 64}.{(i >> 8) % 256}.{i % 256}"


def build_packets(sessions: list[tuple[str, str]], ids, status: int) -> list[bytes]:
    from pyrad import packet as rp

    from abonent.network.radius.codec import DICTIONARY

    secret = R.SECRET.encode()
    out = []
    for _index, ((sid, username), (_sock, ident)) in enumerate(zip(sessions, ids, strict=True)):
        number = int(sid.rsplit("-", 1)[1], 16)
        pkt = rp.AcctPacket(code=rp.AccountingRequest, id=ident, secret=secret, dict=DICTIONARY)
        pkt["Acct-Status-Type"] = "Interim-Update" if status == INTERIM else "Start"
        pkt["Acct-Session-Id"] = sid
        pkt["User-Name"] = username
        pkt["NAS-IP-Address"] = R.NAS_IP
        pkt["Framed-IP-Address"] = framed_ip(number)
        seconds, octets_in, octets_out = counters(number)
        # The Start is dated to when the interim says the session began (its age at the interim): a NAS's
        # Acct-Session-Time agrees with its Start, and an interim that moved started_at back would make every
        # update touch the indexes on started_at, which real traffic does not.
        pkt["Acct-Delay-Time"] = 0 if status == INTERIM else seconds
        if status == INTERIM:
            pkt["Acct-Session-Time"] = seconds
            pkt["Acct-Input-Octets"] = octets_in % GIGA
            pkt["Acct-Input-Gigawords"] = octets_in // GIGA
            pkt["Acct-Output-Octets"] = octets_out % GIGA
            pkt["Acct-Output-Gigawords"] = octets_out // GIGA
        out.append(pkt.RequestPacket())
    return out


def radclient_blocks(sessions: list[tuple[str, str]]) -> list[str]:
    blocks = []
    for sid, username in sessions:
        number = int(sid.rsplit("-", 1)[1], 16)
        seconds, octets_in, octets_out = counters(number)
        blocks.append(
            "Acct-Status-Type = Interim-Update\n"
            f'Acct-Session-Id = "{sid}"\nUser-Name = "{username}"\nNAS-IP-Address = {R.NAS_IP}\n'
            f"Framed-IP-Address = {framed_ip(number)}\nAcct-Delay-Time = 0\nAcct-Session-Time = {seconds}\n"
            f"Acct-Input-Octets = {octets_in % GIGA}\nAcct-Input-Gigawords = {octets_in // GIGA}\n"
            f"Acct-Output-Octets = {octets_out % GIGA}\nAcct-Output-Gigawords = {octets_out // GIGA}"
        )
    return blocks


def sessions_for(tag: str, eligible, count: int, rng: random.Random, offset: int) -> list[tuple[str, str]]:
    users = R.pick(eligible, count, rng)
    return [(f"{tag}-{offset + i:08x}", username) for i, (username, _pw) in enumerate(users)]


def open_sessions(sessions, port: int, inflight: int) -> None:
    started = time.monotonic()
    r = R.run_generator(build_packets(sessions, R.plan_ids(len(sessions), inflight), START), port, inflight, retries=3)
    log(f"opened {len(sessions):,} sessions (Start) in {time.monotonic() - started:.1f}s: answered {r['answered']:,}")


def verify(tag: str, sessions) -> dict:
    """One row per session, holding the interim's counters; usage equals the counters' sum."""
    from django.db import connection

    expected = {sid for sid, _u in sessions}
    exp_in = sum(counters(int(sid.rsplit("-", 1)[1], 16))[1] for sid in expected)
    exp_out = sum(counters(int(sid.rsplit("-", 1)[1], 16))[2] for sid in expected)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT acct_session_id), coalesce(sum(input_octets), 0), "
            "coalesce(sum(output_octets), 0), count(*) FILTER (WHERE subscriber_id IS NULL) "
            "FROM network_session WHERE acct_session_id LIKE %s",
            [tag + "-%"],
        )
        rows, distinct, got_in, got_out, unbound = cur.fetchone()
    return {
        "sessions_sent": len(expected),
        "session_rows": rows,
        "lost": len(expected) - distinct,
        "duplicates": rows - distinct,
        "octets_match": (int(got_in), int(got_out)) == (exp_in, exp_out),
        "unbound": unbound,
    }


def usage_check() -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT coalesce(sum(input_octets + output_octets), 0) FROM network_session "
            "WHERE subscriber_id IS NOT NULL), (SELECT coalesce(sum(input_octets + output_octets), 0) "
            "FROM network_usageday)"
        )
        sessions_total, usage_total = cur.fetchone()
    return {"usage_matches_sessions": int(sessions_total) == int(usage_total)}


def main() -> None:
    parser = R.parser(BENCH, __doc__.split("\n\n")[0], default_requests=50_000)
    parser.add_argument("--interims-only", action="store_true", help="no Start first: the interim creates the row")
    args = parser.parse_args()
    setup, eligible = R.setup_data(args)
    rng = random.Random(args.seed + 11)
    run = f"b{os.getpid():x}{int(time.time()) % 100000:x}"
    server = R.Server(setup.database_url, args.processes)
    checks: dict = {}
    try:
        server.start()
        probe = sessions_for(run + "p", eligible, 1, rng, 0)
        for _ in range(100):
            r = R.run_generator(build_packets(probe, [(0, 0)], INTERIM), server.acct_port, 1, timeout=0.5)
            if r["answered"]:
                break
        else:
            raise SystemExit("the server does not answer")
        log("server answers")

        radclient = None
        if not args.no_radclient:
            sessions = sessions_for(run + "r", eligible, args.requests, rng, 0)
            if not args.interims_only:
                open_sessions(sessions, server.acct_port, args.inflight)
            cpu0 = server.cpu_seconds()
            radclient = R.run_radclient(radclient_blocks(sessions), server.acct_port, "acct", args.inflight)
            radclient["server_cpu_s"] = round(server.cpu_seconds() - cpu0, 2)
            log(f"radclient: {radclient}")
            checks["radclient"] = sessions

        sessions = sessions_for(run + "g", eligible, args.requests, rng, 0)
        if not args.interims_only:
            open_sessions(sessions, server.acct_port, args.inflight)
        log(f"building {len(sessions):,} interim packets")
        packets = build_packets(sessions, R.plan_ids(len(sessions), args.inflight), INTERIM)
        profiler = R.start_profile(server.pids()[0], args.profile) if args.profile else None
        if profiler:
            time.sleep(1.0)
        cpu0 = server.cpu_seconds()
        gen = R.run_generator(packets, server.acct_port, args.inflight)
        gen["server_cpu_s"] = round(server.cpu_seconds() - cpu0, 2)
        R.stop_profile(profiler)
        log(f"generator: {gen}")
        checks["generator"] = sessions

        burst_sessions = sessions_for(run + "b", eligible, args.burst, rng, 0)
        if not args.interims_only:
            open_sessions(burst_sessions, server.acct_port, args.inflight)
        burst = R.run_burst(build_packets(burst_sessions, R.burst_ids(len(burst_sessions)), INTERIM), server.acct_port)
        log(f"burst: {burst}")
        checks["burst"] = burst_sessions
        alive = server.proc.poll() is None
    finally:
        server.stop()  # SIGTERM: the server answers what is queued before leaving

    tags = {"radclient": run + "r", "generator": run + "g", "burst": run + "b"}
    verified = {name: verify(tags[name], sessions) for name, sessions in checks.items()}
    verified["usage"] = usage_check()
    log(f"verified: {verified}")
    lost = sum(v.get("lost", 0) for v in verified.values())
    duplicates = sum(v.get("duplicates", 0) for v in verified.values())
    emit(
        {
            "bench": BENCH,
            "engine": setup.engine,
            "n": args.n,
            "seconds": gen["seconds"],
            "rate": gen["rate"],
            "p50_ms": gen["p50_ms"],
            "p99_ms": gen["p99_ms"],
            "inflight": args.inflight,
            "processes": args.processes,
            "requests": args.requests,
            "starts_first": not args.interims_only,
            "lost": lost,
            "duplicates": duplicates,
            "counters_ok": all(v.get("octets_match", True) for v in verified.values()),
            "usage_ok": verified["usage"]["usage_matches_sessions"],
            "radclient_rate": radclient["rate"] if radclient else None,
            "radclient_seconds": radclient["seconds"] if radclient else None,
            "radclient_received": radclient["received"] if radclient else None,
            "generator": gen,
            "radclient": radclient,
            "burst": burst,
            "verified": verified,
            "kernel_drops": gen["kernel_drops"]
            + (radclient["kernel_drops"] if radclient else 0)
            + burst["kernel_drops"],
            "server_alive": alive,
            "cores": os.cpu_count(),
            "loadavg": os.getloadavg()[0],
            "peer": {"name": R.PEER_NAME, "rate": PEER_RATE},
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
