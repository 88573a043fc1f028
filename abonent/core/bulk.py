"""Multi-row INSERTs for the few hot paths that write tens of thousands of rows at once (the dunning sweep's
states, transitions and notices).

Django's ``bulk_create`` on PostgreSQL binds its parameters on the client (psycopg's ``ClientCursor``, the
backend's default): every value is prepared by its field and quoted into the SQL text in Python, about 20 µs a
value, which made 60,000 outbox rows cost more than the sweep that decided them. Here the rows go as one
``INSERT … VALUES (…), (…)`` per batch through a server-binding cursor on the same connection (so inside the
caller's transaction and its deadlines): psycopg sends the values as they are, dumped in C. ``on_conflict`` and
``returning`` say what ``bulk_create`` cannot: which rows were new. SQLite takes the same statement through
Django's cursor with each value prepared by its field (its scale is small).

Only plain values travel this way (str, int, bool, Decimal, date, aware datetime, None): the models written
here have no JSON or custom fields. Query-count assertions do not see these statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

from django.db import connection, models

# PostgreSQL takes at most 65,535 parameters a statement, SQLite 32,766; and a few thousand rows a statement is
# past the point where bigger statements help.
PARAMETER_LIMIT = {"postgresql": 65_535, "sqlite": 32_766}
MAX_ROWS = 5_000


@contextmanager
def server_cursor():
    """A cursor that binds parameters on the server where the engine can (PostgreSQL), on Django's connection."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def insert(
    objs: Sequence[models.Model],
    *,
    fields: Sequence[str] | None = None,
    on_conflict: str = "",
    returning: str | None = None,
) -> list[tuple]:
    """INSERT ``objs`` (instances of one model; ``fields``: the columns written, by field name, default every
    concrete field but an auto primary key). ``on_conflict``: the statement's ``ON CONFLICT …`` clause;
    ``returning``: columns to return, whose rows come back (PostgreSQL, SQLite ≥ 3.35)."""
    if not objs:
        return []
    meta = type(objs[0])._meta
    if fields is None:
        chosen = [f for f in meta.concrete_fields if not isinstance(f, models.AutoField)]
    else:
        chosen = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in chosen)
    attnames = [f.attname for f in chosen]
    pg = connection.vendor == "postgresql"
    per_batch = max(1, min(MAX_ROWS, PARAMETER_LIMIT.get(connection.vendor, 999) // len(chosen)))
    row_sql = "(" + ", ".join(["%s"] * len(chosen)) + ")"
    tail = f" {on_conflict}" if on_conflict else ""
    if returning:
        tail += f" RETURNING {returning}"
    out: list[tuple] = []
    with server_cursor() as cursor:
        for start in range(0, len(objs), per_batch):
            batch = objs[start : start + per_batch]
            if pg:
                params = [getattr(obj, name) for obj in batch for name in attnames]
            else:
                params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in batch for f in chosen]
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row_sql] * len(batch))}{tail}",
                params,
            )
            if returning:
                out.extend(cursor.fetchall())
    return out
