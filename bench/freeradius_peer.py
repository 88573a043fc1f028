"""The peer ``abonent radius`` must beat: Debian's FreeRADIUS 3.2.1 with rlm_sql on the local PostgreSQL.

    python bench/freeradius_peer.py [--n 100000] [--requests R] [--inflight 50] [--pool 8[,16,...]]
                                    [--no-generator] [--postauth-log] [--reseed] [--keep-config]

Needs the Debian packages ``freeradius`` (3.2.1, with ``radclient`` from ``freeradius-utils``) and
``freeradius-postgresql`` (rlm_sql_postgresql): ``apt-get install -y freeradius freeradius-postgresql``.

Data: the database ``abonent_bench_freeradius_<n>`` with FreeRADIUS's stock PostgreSQL schema
(``mods-config/sql/main/postgresql/schema.sql``), ``n`` users ``u1``…``u<n>`` in ``radcheck``
(``Cleartext-Password :=`` one of bench/_radius.py's passwords) and three ``radreply`` rows each
(``Mikrotik-Rate-Limit``, ``Session-Timeout``, ``Acct-Interim-Interval``: what ``abonent radius`` answers a
MikroTik with), made set-based and reused while the schema and the data recipe are unchanged. Every run
starts with ``radacct`` and ``radpostauth`` empty (as bench/_radius.py empties the sessions).

Server: a configuration directory of its own in a temp dir (nothing under /etc/freeradius is touched; the
stock ``dictionary``, ``policy.d/accounting`` and ``queries.conf`` are copied into it), one virtual server:
``authorize { sql; pap }``, ``authenticate { pap }``, ``preacct { acct_unique }`` (the stock policy that
sets Acct-Unique-Session-Id, the key of the stock accounting queries), ``accounting { sql }``; no
post-auth logging (``abonent radius`` records only rejected and restricted attempts, never accepts);
client 127.0.0.1 with bench/_radius.py's secret and ``require_message_authenticator = yes``; free
unprivileged ports; ``freeradius -f`` (no -X: logging off the hot path). rlm_sql: ``rlm_sql_postgresql``,
dialect postgresql, the stock queries, ``read_groups`` left on (its default, one more query per
Access-Request against the empty ``radusergroup``). Worker threads = SQL connections = ``--pool``, all
opened at start and never retired: in 3.x a thread that finds no free connection fails the request rather
than waiting, so the pool must be at least as large as the thread pool, and more connections than threads
would never be used. ``max_requests`` is raised from 16,384 to 65,536 so FreeRADIUS's own duplicate
tracking (``cleanup_delay`` 5 s) can never cap the rate.

Measurements, as bench/radius_auth.py and bench/radius_acct.py measure ``abonent radius``:

1. Auth: a 5,000-request warm-up by the load generator, then radclient
   (``radclient -q -p <inflight> -s -f FILE 127.0.0.1:PORT auth SECRET``, bench/_radius.py's
   ``run_radclient``) over ``--requests`` distinct users (PAP, ``Message-Authenticator = 0x00``, the blocks of
   ``radius_auth.radclient_blocks``) → ``auth_rate``; then the load generator over other users.
2. Accounting: untimed Starts for ``--requests`` sessions (the generator, as ``radius_acct.open_sessions``),
   then the timed Interim-Updates of ``radius_acct.radclient_blocks`` (octets with gigawords) by radclient →
   ``interim_rate``; then the same again with the load generator.
3. Checks: every Access-Request answered with an Access-Accept; ``radacct`` holds exactly one row per
   session, each with the interim's session time and octets (gigawords included), compared row by row.

``--pool 4,8,16`` measures each size with a fresh server (and empty ``radacct``) and reports the best rate of
each kind. The default, 8, is what did best on the 2-core machine this was written on (radclient auth/s and
interim/s, 50,000 each, 50 in flight): 2: 7,300/3,500, 4: 7,500–6,600/3,650–4,600, 8: 7,800–6,600/6,000–4,850,
16: 7,350–6,500/5,950–5,050, 32: 6,850–6,500/6,350–4,600. Fewer connections starve the interims (each
UPDATE waits for its commit), more only add context switches to the auths; everything is CPU-bound (the
machine ~95% busy, PostgreSQL the largest share, then FreeRADIUS, then radclient).

``--postauth-log`` adds the stock default site's ``post-auth { -sql }`` (an INSERT INTO radpostauth per
answer): off by default since ``abonent radius`` writes nothing for an accept, but it is how a stock
FreeRADIUS + rlm_sql is usually deployed (here it halves the auth rate).

The load generator keeps one RADIUS identifier per worker and reuses it as soon as the answer is in:
FreeRADIUS 3 sends the reply from a worker thread before the request is marked done, so ~8% of the
generator's packets arrive "conflicting" with a request still finishing, and FreeRADIUS logs an error and
drops the old (already answered) one. Nothing is lost, but the generator figures carry that small cost;
radclient (which cycles through 256 identifiers, as a NAS does) does not trigger it.
Progress goes to stderr; the last line on stdout is the JSON result.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _radius as R
import radius_acct
import radius_auth
from _common import (
    DEFAULT_SEED,
    _pg_marker,
    _pg_recreate,
    _pg_set_marker,
    _server_url,
    _with_database,
    emit,
    log,
)

BENCH = "freeradius_peer"
RADDB = Path("/etc/freeradius/3.0")
SCHEMA = RADDB / "mods-config/sql/main/postgresql/schema.sql"
QUERIES = RADDB / "mods-config/sql/main/postgresql/queries.conf"
DEFAULT_POOL = "8"
WARMUP = 5000
ACCESS_ACCEPT, ACCOUNTING_RESPONSE = 2, 5
RATES = ["10M/10M", "20M/20M", "50M/50M", "100M/100M"]  # Mikrotik-Rate-Limit of user i: RATES[i % 4]
# What the data is made of; change it and the database is made again.
DATA_RECIPE = f"v1 pw={','.join(R.PASSWORDS)} rates={','.join(RATES)} reply=rate,timeout,interim"

RADIUSD_CONF = """\
# Written by bench/freeradius_peer.py: FreeRADIUS 3.2 + rlm_sql (PostgreSQL), one virtual server.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = @DIR@
raddbdir = @DIR@
radacctdir = @DIR@/radacct
name = freeradius
confdir = @DIR@
modconfdir = @DIR@/mods-config
run_dir = @DIR@
db_dir = @DIR@
libdir = /usr/lib/freeradius
pidfile = @DIR@/freeradius.pid

max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no

log {
	destination = files
	colourise = no
	file = @DIR@/radius.log
	syslog_facility = daemon
	stripped_names = no
	auth = no
	auth_badpass = no
	auth_goodpass = no
}

security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 1
	status_server = yes
}

proxy_requests = no

client bench {
	ipaddr = 127.0.0.1
	secret = @SECRET@
	require_message_authenticator = yes
	nas_type = other
}

thread pool {
	start_servers = @POOL@
	max_servers = @POOL@
	min_spare_servers = @POOL@
	max_spare_servers = @POOL@
	max_requests_per_server = 0
	auto_limit_acct = no
}

modules {
	# %{tolower:...} (the accounting query's reference) and %{md5:...} (acct_unique) are rlm_expr's.
	expr {
	}

	pap {
		normalise = yes
	}

	sql {
		driver = "rlm_sql_postgresql"
		dialect = "postgresql"
		server = "@PGHOST@"
		port = @PGPORT@
		login = "@PGUSER@"
		password = "@PGPASSWORD@"
		radius_db = "@DATABASE@"

		postgresql {
			send_application_name = yes
		}

		acct_table1 = "radacct"
		acct_table2 = "radacct"
		postauth_table = "radpostauth"
		authcheck_table = "radcheck"
		groupcheck_table = "radgroupcheck"
		authreply_table = "radreply"
		groupreply_table = "radgroupreply"
		usergroup_table = "radusergroup"
		delete_stale_sessions = yes
		read_clients = no
		client_table = "nas"
		group_attribute = "SQL-Group"

		pool {
			start = @POOL@
			min = @POOL@
			max = @POOL@
			spare = 0
			uses = 0
			retry_delay = 30
			lifetime = 0
			idle_timeout = 0
		}

		$INCLUDE ${modconfdir}/${.:name}/main/${dialect}/queries.conf
	}
}

instantiate {
}

policy {
	$INCLUDE policy.d/accounting
}

server bench {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = @AUTH_PORT@
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = @ACCT_PORT@
	}

	authorize {
		sql
		pap
	}

	authenticate {
		Auth-Type PAP {
			pap
		}
	}

	preacct {
		acct_unique
	}

	accounting {
		sql
	}

	post-auth {
		@POSTAUTH@
	}
}
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"bench/{BENCH}.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="users in radcheck (default 100,000)")
    p.add_argument("--requests", type=int, default=50_000, help="timed requests of each kind (default 50,000)")
    p.add_argument("--inflight", type=int, default=50, help="requests in flight (default 50)")
    p.add_argument(
        "--pool",
        default=DEFAULT_POOL,
        help=f"worker threads = SQL connections; a comma-separated list measures each (default {DEFAULT_POOL})",
    )
    p.add_argument("--no-generator", action="store_true", help="radclient only (skip the load generator runs)")
    p.add_argument("--reseed", action="store_true", help="drop the benchmark database and make it again")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed of the request order")
    p.add_argument(
        "--postauth-log",
        action="store_true",
        help="log every answer to radpostauth, as the stock default site does (off: abonent logs no accepts)",
    )
    p.add_argument("--keep-config", action="store_true", help="leave the FreeRADIUS config directory behind")
    return p.parse_args()


# --- data -------------------------------------------------------------------------------------------------------


def users_of(n: int) -> list[tuple[str, str]]:
    return [(f"u{i}", R.PASSWORDS[i % len(R.PASSWORDS)]) for i in range(1, n + 1)]


def setup_database(n: int, reseed: bool) -> str:
    """``abonent_bench_freeradius_<n>``, the stock schema and n users (made again when the recipe changed);
    returns the database's URL. ``radacct`` and ``radpostauth`` are emptied every time."""
    import psycopg

    server = _server_url()
    database = f"abonent_bench_freeradius_{n}"
    schema = SCHEMA.read_text()
    digest = hashlib.sha256(f"{DATA_RECIPE}\n{schema}".encode()).hexdigest()[:16]
    marker = f"abonent-bench freeradius n={n} data={digest}"
    current = _pg_marker(server, database)
    url = _with_database(server, database)
    if reseed or current != marker:
        reason = "--reseed" if reseed else "missing" if current is None else "holds other data"
        log(f"database {database}: {reason}; creating it")
        started = time.monotonic()
        _pg_recreate(server, database)
        cases = " ".join(f"WHEN {i} THEN '{pw}'" for i, pw in enumerate(R.PASSWORDS))
        rates = ", ".join(f"'{r}'" for r in RATES)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(schema)
            with conn.transaction():
                conn.execute(
                    "INSERT INTO radcheck (username, attribute, op, value) "
                    f"SELECT 'u' || i, 'Cleartext-Password', ':=', CASE i %% {len(R.PASSWORDS)} {cases} END "
                    "FROM generate_series(1, %s) i ORDER BY i",
                    [n],
                )
                conn.execute(
                    "INSERT INTO radreply (username, attribute, op, value) "
                    "SELECT 'u' || i, a.attribute, '=', a.value FROM generate_series(1, %s) i, LATERAL (VALUES "
                    f"(1, 'Mikrotik-Rate-Limit', (ARRAY[{rates}])[i %% {len(RATES)} + 1]), "
                    "(2, 'Session-Timeout', '86400'), (3, 'Acct-Interim-Interval', '300')) "
                    "AS a(k, attribute, value) ORDER BY i, a.k",
                    [n],
                )
            conn.execute("VACUUM ANALYZE radcheck")
            conn.execute("VACUUM ANALYZE radreply")
        _pg_set_marker(server, database, marker)
        log(f"database {database}: {n:,} users in {time.monotonic() - started:.1f}s")
    else:
        log(f"reusing database {database} ({n:,} users)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE radacct, radpostauth RESTART IDENTITY")
        conn.execute("VACUUM ANALYZE radacct")
    return url


# --- the server -------------------------------------------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            parts = fh.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _postgres_cpu() -> float:
    """CPU seconds of every ``postgres`` process alive (backends, walwriter, checkpointer…)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as fh:
                    if fh.read().strip() != "postgres":
                        continue
            except OSError:
                continue
            total += _proc_cpu(int(entry))
    return total


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as fh:
        values = [int(x) for x in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class FreeRadius:
    """``freeradius -f -d <temp dir>`` with RADIUSD_CONF; ``stop()`` always ends it."""

    def __init__(self, database_url: str, pool: int, keep: bool = False, postauth: bool = False) -> None:
        from urllib.parse import urlsplit

        self.pool = pool
        self.keep = keep
        self.auth_port = R._free_port()
        self.acct_port = R._free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-freeradius-"))
        self.proc: subprocess.Popen | None = None
        parts = urlsplit(database_url)
        self.values = {
            "@DIR@": str(self.dir),
            "@SECRET@": R.SECRET,
            "@POOL@": str(pool),
            "@PGHOST@": parts.hostname or "127.0.0.1",
            "@PGPORT@": str(parts.port or 5432),
            "@PGUSER@": parts.username or "postgres",
            "@PGPASSWORD@": parts.password or "",
            "@DATABASE@": parts.path.lstrip("/"),
            "@AUTH_PORT@": str(self.auth_port),
            "@ACCT_PORT@": str(self.acct_port),
            # The stock default site's "-sql" in post-auth: one INSERT INTO radpostauth per answer.
            "@POSTAUTH@": "sql" if postauth else "",
        }

    def write_config(self) -> None:
        text = RADIUSD_CONF
        for key, value in self.values.items():
            text = text.replace(key, value)
        (self.dir / "radiusd.conf").write_text(text)
        shutil.copy(RADDB / "dictionary", self.dir / "dictionary")
        (self.dir / "policy.d").mkdir()
        shutil.copy(RADDB / "policy.d" / "accounting", self.dir / "policy.d" / "accounting")
        queries = self.dir / "mods-config" / "sql" / "main" / "postgresql"
        queries.mkdir(parents=True)
        shutil.copy(QUERIES, queries / "queries.conf")
        (self.dir / "radacct").mkdir()

    def start(self, timeout: float = 60.0) -> None:
        self.write_config()
        check = subprocess.run(["freeradius", "-C", "-d", str(self.dir)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"freeradius -C failed:\n{check.stdout}{check.stderr}{self.log_tail()}")
        cmd = ["freeradius", "-f", "-d", str(self.dir)]
        log(f"starting: {' '.join(cmd)} (pool {self.pool}, auth {self.auth_port}, acct {self.acct_port})")
        started = time.monotonic()
        with open(self.dir / "console.log", "wb") as console:  # its log goes to radius.log; this is a fallback
            self.proc = subprocess.Popen(cmd, start_new_session=True, stdout=console, stderr=subprocess.STDOUT)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"freeradius exited with {self.proc.returncode}:\n{self.log_tail()}")
            if R._bound_sockets(self.auth_port) and R._bound_sockets(self.acct_port):
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"freeradius did not bind its ports in time:\n{self.log_tail()}")
        log(f"freeradius listening after {time.monotonic() - started:.1f}s (pid {self.proc.pid})")

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("console.log", "radius.log"):
            path = self.dir / name
            if path.exists():
                out += [f"--- {name}", *path.read_text(errors="replace").splitlines()[-lines:]]
        return "\n".join(out)

    def cpu_seconds(self) -> float:
        return _proc_cpu(self.proc.pid) if self.proc else 0.0

    def stop(self) -> None:
        R.terminate(self.proc)
        if self.keep:
            log(f"config left in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def measured(server: FreeRadius, run) -> dict:
    """``run()``'s result plus where the CPU went meanwhile: FreeRADIUS, PostgreSQL, the whole machine."""
    fr0, pg0, (busy0, total0) = server.cpu_seconds(), _postgres_cpu(), _machine_cpu()
    result = run()
    fr1, pg1, (busy1, total1) = server.cpu_seconds(), _postgres_cpu(), _machine_cpu()
    result["freeradius_cpu_s"] = round(fr1 - fr0, 2)
    result["postgres_cpu_s"] = round(pg1 - pg0, 2)
    result["machine_busy"] = round((busy1 - busy0) / max(1, total1 - total0), 2)  # of all cores
    return result


# --- checks -----------------------------------------------------------------------------------------------------


def verify_sessions(url: str, tag: str, sessions: list[tuple[str, str]]) -> dict:
    """One radacct row per session, each with its interim's session time and octets (gigawords included)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT acctsessionid, username, acctsessiontime, acctinputoctets, acctoutputoctets, "
            "acctinterval IS NOT NULL, host(framedipaddress) FROM radacct WHERE acctsessionid LIKE %s",
            [tag + "-%"],
        ).fetchall()
    expected = dict(sessions)
    seen: set[str] = set()
    wrong = not_updated = 0
    for sid, username, seconds, octets_in, octets_out, updated, ip in rows:
        seen.add(sid)
        number = int(sid.rsplit("-", 1)[1], 16)
        if not updated:
            not_updated += 1
        if (username, seconds, octets_in, octets_out, ip) != (
            expected.get(sid),
            *radius_acct.counters(number),
            radius_acct.framed_ip(number),
        ):
            wrong += 1
    return {
        "sessions_sent": len(expected),
        "rows": len(rows),
        "lost": len(set(expected) - seen),
        "duplicates": len(rows) - len(seen),
        "interim_not_applied": not_updated,
        "counters_wrong": wrong,
        "gigaword_rows": sum(1 for r in rows if r[3] >= radius_acct.GIGA),
        "ok": len(rows) == len(expected) == len(seen) and not (wrong or not_updated or set(expected) - seen),
    }


def auth_ok(result: dict, requests: int, generator: bool) -> dict:
    if generator:
        accepted, lost = result["codes"].get(ACCESS_ACCEPT, 0), result["lost"]
    else:
        accepted, lost = result["summary"].get("Accepted", 0), result["lost"] or 0
    return {"requests": requests, "accepted": accepted, "lost": lost, "ok": accepted == requests and not lost}


# --- one pool size ----------------------------------------------------------------------------------------------


def measure(url: str, pool: int, users: list[tuple[str, str]], args, rng: random.Random) -> dict:
    server = FreeRadius(url, pool, keep=args.keep_config, postauth=args.postauth_log)
    run = f"f{os.getpid():x}p{pool}"
    out: dict = {"pool": pool}
    checks: dict = {}
    sessions: dict[str, list[tuple[str, str]]] = {}
    try:
        server.start()
        probe = radius_auth.build_packets(users[:1], [(0, 0)])
        for _ in range(100):
            r = R.run_generator(probe, server.auth_port, 1, timeout=0.5)
            if r["answered"]:
                break
        else:
            raise SystemExit(f"freeradius does not answer:\n{server.log_tail()}")
        if r["codes"].get(ACCESS_ACCEPT) != 1:
            raise SystemExit(f"probe not accepted: {r}\n{server.log_tail()}")
        log(f"freeradius answers; warm-up {WARMUP:,} requests")
        warm = R.pick(users, WARMUP, rng)
        R.run_generator(
            radius_auth.build_packets(warm, R.plan_ids(WARMUP, args.inflight)), server.auth_port, args.inflight
        )

        # Auth: radclient, then the generator, each over its own distinct users.
        picked = R.pick(users, args.requests * (1 if args.no_generator else 2), rng)
        blocks = radius_auth.radclient_blocks(picked[: args.requests])
        out["auth_radclient"] = measured(
            server, lambda: R.run_radclient(blocks, server.auth_port, "auth", args.inflight)
        )
        checks["auth_radclient"] = auth_ok(out["auth_radclient"], args.requests, generator=False)
        log(f"auth radclient: {out['auth_radclient']}")
        if not args.no_generator:
            gen_users = picked[args.requests :]
            packets = radius_auth.build_packets(gen_users, R.plan_ids(len(gen_users), args.inflight))
            out["auth_generator"] = measured(server, lambda: R.run_generator(packets, server.auth_port, args.inflight))
            checks["auth_generator"] = auth_ok(out["auth_generator"], len(gen_users), generator=True)
            log(f"auth generator: {out['auth_generator']}")

        # Accounting: untimed Starts, then the timed Interim-Updates of the same sessions.
        sessions["radclient"] = radius_acct.sessions_for(run + "r", users, args.requests, rng, 0)
        radius_acct.open_sessions(sessions["radclient"], server.acct_port, args.inflight)
        blocks = radius_acct.radclient_blocks(sessions["radclient"])
        out["interim_radclient"] = measured(
            server, lambda: R.run_radclient(blocks, server.acct_port, "acct", args.inflight)
        )
        log(f"interim radclient: {out['interim_radclient']}")
        if not args.no_generator:
            sessions["generator"] = radius_acct.sessions_for(run + "g", users, args.requests, rng, 0)
            radius_acct.open_sessions(sessions["generator"], server.acct_port, args.inflight)
            packets = radius_acct.build_packets(
                sessions["generator"],
                R.plan_ids(args.requests, args.inflight),
                radius_acct.INTERIM,
            )
            out["interim_generator"] = measured(
                server, lambda: R.run_generator(packets, server.acct_port, args.inflight)
            )
            log(f"interim generator: {out['interim_generator']}")
        out["server_alive"] = server.proc.poll() is None
    finally:
        server.stop()
    for name, tagged in sessions.items():
        checks[f"interim_{name}"] = verify_sessions(url, run + name[0], tagged)
    out["verified"] = checks
    log(f"pool {pool}: verified {checks}")
    return out


def _terminate(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # so that ``finally`` stops FreeRADIUS


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started in the background, where SIGINT is ignored
    pools = [int(x) for x in str(args.pool).split(",") if x.strip()]
    if not shutil.which("freeradius") or not shutil.which("radclient"):
        raise SystemExit("needs freeradius and radclient (apt-get install freeradius freeradius-utils)")
    if not Path("/usr/lib/freeradius/rlm_sql_postgresql.so").exists():
        raise SystemExit("needs rlm_sql_postgresql: apt-get install -y freeradius-postgresql")
    version = subprocess.run(["freeradius", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    started = time.monotonic()
    url = setup_database(args.n, args.reseed)
    users = users_of(args.n)
    runs = []
    for index, pool in enumerate(pools):
        if index:
            setup_database(args.n, reseed=False)  # every size starts from an empty radacct
        runs.append(measure(url, pool, users, args, random.Random(args.seed + 13)))

    best_auth = max(runs, key=lambda r: r["auth_radclient"]["rate"])
    best_acct = max(runs, key=lambda r: r["interim_radclient"]["rate"])
    gen = not args.no_generator
    result = {
        "bench": BENCH,
        "auth_rate": best_auth["auth_radclient"]["rate"],
        "auth_received": best_auth["auth_radclient"]["received"],
        "interim_rate": best_acct["interim_radclient"]["rate"],
        "interim_received": best_acct["interim_radclient"]["received"],
        "auth_generator_rate": best_auth["auth_generator"]["rate"] if gen else None,
        "auth_generator_p99_ms": best_auth["auth_generator"]["p99_ms"] if gen else None,
        "interim_generator_rate": best_acct["interim_generator"]["rate"] if gen else None,
        "interim_generator_p99_ms": best_acct["interim_generator"]["p99_ms"] if gen else None,
        "pool": best_auth["pool"] if len(runs) == 1 else {"auth": best_auth["pool"], "interim": best_acct["pool"]},
        "verified": {
            "auth": best_auth["verified"]["auth_radclient"],
            "interim": best_acct["verified"]["interim_radclient"],
            "all_ok": all(v["ok"] for r in runs for v in r["verified"].values()),
        },
        "postauth_log": args.postauth_log,
        "reference": {"auth_rate": radius_auth.PEER_RATE, "interim_rate": radius_acct.PEER_RATE},
        "n": args.n,
        "requests": args.requests,
        "inflight": args.inflight,
        "cores": os.cpu_count(),
        "loadavg": os.getloadavg()[0],
        "server": version,
        "seconds_total": round(time.monotonic() - started, 1),
        "runs": runs if len(runs) > 1 else None,
        "detail": runs[0] if len(runs) == 1 else None,
    }
    emit(result)


if __name__ == "__main__":
    main()
