"""What every benchmark in ``bench/`` shares: a database of its own, migrated and seeded once, and one JSON line.

A benchmark calls ``prepare(name, n)`` before touching Django: it points ``DATABASE_URL`` at a database of
its own on the PostgreSQL server (``DATABASE_URL``'s, else ``postgres://postgres@127.0.0.1:5432/``), creates
it if missing, runs ``migrate`` and seeds ``n`` subscribers with ``abonent seed`` unless the database already
holds exactly that seed. The seed is recorded in a ``COMMENT ON DATABASE`` with a fingerprint of every
``seeding.py`` in the project (or of the apps named in ``seeded_apps``, whose steps alone then run), so a
change to how data is generated reseeds, and an unchanged rerun starts timing within seconds; ``--reseed``
forces it. ``--engine sqlite`` uses a file under ``$ABONENT_VAR_DIR/bench`` instead.

    from _common import base_parser, emit, percentile, prepare

    args = base_parser("my_bench", default_n=1_000_000).parse_args()
    setup = prepare("my_bench", args.n, engine=args.engine, reseed=args.reseed)
    ...  # Django is set up now; import models and time things
    emit({"bench": "my_bench", "engine": setup.engine, "n": args.n, "seconds": ..., "rate": ...,
          "seed_seconds": setup.seed_seconds})
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/"
DEFAULT_SEED = 20261129
MARKER = "abonent-bench"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress goes to stderr (seconds since start): stdout carries only the result line."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def emit(result: dict) -> None:
    """The benchmark's result: one JSON line, the last thing on stdout."""
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by the nearest-rank method; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def base_parser(name: str, *, default_n: int, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"bench/{name}.py", description=description)
    parser.add_argument("--n", type=int, default=default_n, help=f"subscribers to seed (default {default_n:,})")
    parser.add_argument(
        "--engine", choices=["postgresql", "sqlite"], default="postgresql", help="database engine (default postgresql)"
    )
    parser.add_argument("--reseed", action="store_true", help="drop the benchmark database and seed it again")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed of the data")
    return parser


@dataclass
class Setup:
    engine: str
    database_url: str
    database: str
    seed_seconds: float | None  # None when an existing seeded database was reused


def seed_fingerprint(n: int, seed: int, apps: tuple[str, ...] | None = None) -> str:
    """What the data depends on: n, the random seed and the source of the seed steps (of ``apps`` only,
    when given: the ones whose data the benchmark reads)."""
    digest = hashlib.sha256(f"{n}:{seed}".encode())
    paths = (ROOT / "abonent").rglob("seeding.py")
    if apps is not None:
        paths = [ROOT / "abonent" / app / "seeding.py" for app in ("core", *apps)]
    for path in sorted(p for p in paths if p.exists()):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL") or DEFAULT_SERVER
    if not url.startswith(("postgres://", "postgresql://")):
        url = DEFAULT_SERVER
    return url


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _pg_admin(url: str):
    import psycopg

    return psycopg.connect(_with_database(url, "postgres"), autocommit=True)


def _pg_marker(url: str, database: str) -> str | None:
    """The seed marker of an existing database, "" for one without, ``None`` when there is no such database."""
    with _pg_admin(url) as conn:
        row = conn.execute(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = %s",
            [database],
        ).fetchone()
    return None if row is None else row[0]


def _pg_recreate(url: str, database: str) -> None:
    from psycopg import sql

    with _pg_admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _pg_set_marker(url: str, database: str, marker: str) -> None:
    from psycopg import sql

    with _pg_admin(url) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(database), sql.Literal(marker)))


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abonent.settings")
    os.environ.setdefault("ABONENT_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _subscriber_count() -> int:
    from abonent.subscribers.models import Subscriber

    return Subscriber.objects.count()


def _seed(n: int, seed: int, apps: tuple[str, ...] | None) -> None:
    """``abonent seed --subscribers n``, or only the steps of ``apps`` (the data the benchmark reads)."""
    from django.core.management import call_command

    if apps is None:
        call_command("seed", subscribers=n, seed=seed)
        return
    import random

    from abonent.core import seeding

    ctx = seeding.SeedContext(subscribers=n, rng=random.Random(seed), out=sys.stderr)
    modules = tuple(f"abonent.{app}." for app in apps)
    for step in sorted(seeding._steps.values(), key=lambda s: s.order):
        if step.run.__module__.startswith(modules):
            started = time.monotonic()
            step.run(ctx)
            print(f"seed: {step.name} done in {time.monotonic() - started:.1f}s", file=sys.stderr)


def prepare(
    name: str,
    n: int,
    *,
    engine: str = "postgresql",
    reseed: bool = False,
    seed: int = DEFAULT_SEED,
    seeded_apps: tuple[str, ...] | None = None,
    extra_subscribers: int = 0,
) -> Setup:
    """Point Django at this benchmark's database, migrated and holding exactly ``n`` seeded subscribers.

    ``seeded_apps`` names the apps whose seed steps make the data the benchmark reads (default: all, as
    ``abonent seed``): only those steps run, and a change to another app's ``seeding.py`` does not cost a
    reseed. ``--reseed`` forces one. ``extra_subscribers``: how many subscribers the benchmark itself adds to
    the seeded ones and keeps across runs (``bench/console_pages.py``'s subscriber with a long history).
    """
    from django.core.management import call_command

    # ABONENT_BENCH_DATABASE: another name, where the server's databases are shared (a helper's own prefix).
    database = os.environ.get("ABONENT_BENCH_DATABASE") or f"abonent_bench_{name}_{n}"
    marker = f"{MARKER} n={n} seed={seed} code={seed_fingerprint(n, seed, seeded_apps)}"
    if engine == "postgresql":
        server = _server_url()
        url = _with_database(server, database)
        current = _pg_marker(server, database)
        fresh = reseed or current != marker
        if fresh:
            reason = (
                "--reseed"
                if reseed
                else "missing"
                if current is None
                else "holds another seed"
                if current
                else "not fully seeded"
            )
            log(f"database {database}: {reason}; creating it")
            _pg_recreate(server, database)
    else:
        var_dir = Path(os.environ.get("ABONENT_VAR_DIR", ROOT / "var")).resolve()
        path = var_dir / "bench" / f"{database}.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        marker_path = path.with_suffix(".seeded")
        url = f"sqlite:///{path}"
        current = marker_path.read_text() if marker_path.exists() and path.exists() else None
        fresh = reseed or current != marker
        if fresh:
            log(f"database {path}: creating it")
            for stale in (path, marker_path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                stale.unlink(missing_ok=True)

    _setup_django(url)
    log(f"database {database} ({engine}): migrating")
    call_command("migrate", verbosity=0, interactive=False)
    if not fresh and not n <= _subscriber_count() <= n + extra_subscribers:
        # Marked as seeded but changed since (a benchmark that writes, a hand edit): start again.
        from django.db import connections

        log(f"database {database} no longer holds {n:,} subscribers; creating it again")
        connections.close_all()
        if engine == "postgresql":
            _pg_recreate(server, database)
        else:
            path.unlink()
            marker_path.unlink(missing_ok=True)
        call_command("migrate", verbosity=0, interactive=False)
        fresh = True

    seed_seconds = None
    if fresh:
        log(f"seeding {n:,} subscribers")
        started = time.monotonic()
        _seed(n, seed, seeded_apps)
        seed_seconds = round(time.monotonic() - started, 1)
        count = _subscriber_count()
        if count != n:
            raise SystemExit(f"seeding produced {count:,} subscribers, expected {n:,}")
        log(f"seeded {n:,} subscribers in {seed_seconds:.1f}s")
        if engine == "postgresql":
            _pg_set_marker(server, database, marker)
        else:
            marker_path.write_text(marker)
    else:
        log(f"reusing seeded database {database} ({n:,} subscribers)")
    return Setup(engine=engine, database_url=url, database=database, seed_seconds=seed_seconds)
