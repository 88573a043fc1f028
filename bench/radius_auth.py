"""RADIUS Access-Request (PAP + Message-Authenticator, full policy) against ``abonent radius``.

    python bench/radius_auth.py [--n 100000] [--processes P] [--inflight 50] [--requests R]

Seeds (or reuses) ``abonent_bench_radius_<n>`` (bench/_radius.py), starts ``abonent radius`` on free ports
as a subprocess against it, then measures:

1. FreeRADIUS's radclient, as the FreeRADIUS reference was measured:
   ``radclient -q -p <inflight> -s -f FILE 127.0.0.1:PORT auth SECRET`` over R requests to distinct users
   (User-Name, User-Password, ``Message-Authenticator = 0x00``): wall time → ``rate``.
2. A load generator (an epoll loop over raw UDP sockets, packets pre-built with pyrad, <inflight> workers,
   one identifier each): rate, p50/p99 latency per request, and its own CPU time (to show it is not the bottleneck).
3. A burst: ``--burst`` requests sent at once without waiting; answers counted, and the kernel's UDP
   receive-buffer drops (``/proc/net/snmp`` Udp RcvbufErrors) before/after.

Target (DESIGN.md §5): ≥ 8,000/s, p99 ≤ 10 ms at 50 in flight (FreeRADIUS 3.2.1 + rlm_sql: 3,300–3,600/s as the
issue measured it; bench/freeradius_peer.py measures it on this machine).
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

BENCH = "radius_auth"
PEER_RATE = 3450


def build_packets(users: list[tuple[str, str]], ids: list[tuple[int, int]]) -> list[bytes]:
    from pyrad import packet as rp

    from abonent.network.radius.codec import DICTIONARY

    secret = R.SECRET.encode()
    out = []
    for (username, password), (_sock, ident) in zip(users, ids, strict=True):
        pkt = rp.AuthPacket(
            code=rp.AccessRequest, id=ident, secret=secret, authenticator=os.urandom(16), dict=DICTIONARY
        )
        pkt.add_message_authenticator()
        pkt["User-Name"] = username
        pkt["User-Password"] = pkt.PwCrypt(password)
        pkt["NAS-IP-Address"] = R.NAS_IP
        out.append(pkt.RequestPacket())
    return out


def radclient_blocks(users: list[tuple[str, str]]) -> list[str]:
    return [
        f'User-Name = "{u}"\nUser-Password = "{p}"\nNAS-IP-Address = {R.NAS_IP}\nMessage-Authenticator = 0x00'
        for u, p in users
    ]


def main() -> None:
    args = R.parser(BENCH, __doc__.split("\n\n")[0], default_requests=100_000).parse_args()
    setup, eligible = R.setup_data(args)
    rng = random.Random(args.seed + 7)
    server = R.Server(setup.database_url, args.processes)
    result: dict = {}
    try:
        server.start()
        # Ready: a test authentication answered (with several processes, every one has bound its socket).
        probe = build_packets(eligible[:1], [(0, 0)])
        for _ in range(100):
            r = R.run_generator(probe, server.auth_port, 1, timeout=0.5)
            if r["answered"]:
                break
        else:
            raise SystemExit("the server does not answer")
        if r["codes"].get(2) != 1:
            raise SystemExit(f"probe not accepted: {r}")
        log("server answers; warm-up 5,000 requests")
        R.run_generator(
            build_packets(R.pick(eligible, 5000, rng), R.plan_ids(5000, args.inflight)), server.auth_port, args.inflight
        )

        radclient = None
        if not args.no_radclient:
            users = R.pick(eligible, args.requests, rng)
            cpu0 = server.cpu_seconds()
            radclient = R.run_radclient(radclient_blocks(users), server.auth_port, "auth", args.inflight)
            radclient["server_cpu_s"] = round(server.cpu_seconds() - cpu0, 2)
            log(f"radclient: {radclient}")

        users = R.pick(eligible, args.requests, rng)
        log(f"building {len(users):,} packets for the generator")
        packets = build_packets(users, R.plan_ids(len(users), args.inflight))
        profiler = R.start_profile(server.pids()[0], args.profile) if args.profile else None
        if profiler:
            time.sleep(1.0)
        cpu0 = server.cpu_seconds()
        gen = R.run_generator(packets, server.auth_port, args.inflight)
        gen["server_cpu_s"] = round(server.cpu_seconds() - cpu0, 2)
        R.stop_profile(profiler)
        log(f"generator: {gen}")

        burst_users = R.pick(eligible, args.burst, rng)
        burst = R.run_burst(build_packets(burst_users, R.burst_ids(len(burst_users))), server.auth_port)
        log(f"burst: {burst}")
        alive = server.proc.poll() is None
    finally:
        server.stop()

    accepts = gen["codes"].get(2, 0)
    result = {
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
        "accepts": accepts,
        "lost": gen["lost"],
        "radclient_rate": radclient["rate"] if radclient else None,
        "radclient_seconds": radclient["seconds"] if radclient else None,
        "radclient_received": radclient["received"] if radclient else None,
        "generator": gen,
        "radclient": radclient,
        "burst": burst,
        "kernel_drops": gen["kernel_drops"] + (radclient["kernel_drops"] if radclient else 0) + burst["kernel_drops"],
        "server_alive": alive,
        "cores": os.cpu_count(),
        "loadavg": os.getloadavg()[0],
        "peer": {"name": R.PEER_NAME, "rate": PEER_RATE},
        "seed_seconds": setup.seed_seconds,
    }
    emit(result)


if __name__ == "__main__":
    main()
