"""Multi-row INSERTs for the few hot paths that write tens of thousands of rows at once (the dunning sweep's
states, transitions and notices).

Django's ``bulk_create`` on PostgreSQL binds its parameters on the client (psycopg's ``ClientCursor``, the
backend's default): every value is prepared by its field and quoted into the SQL text in Python, about 20 µs a
value, which made 60,000 outbox rows cost more than the sweep that decided them. Here the rows go as one
``INSERT … SELECT * FROM unnest(<an array per column>)`` per batch through a server-binding cursor on the same
connection (so inside the caller's transaction and its deadlines): psycopg sends the values as they are, and the
statement's text does not grow with the rows (a ``VALUES`` list of 100,000 placeholders took psycopg 20 s to
parse). ``on_conflict`` and ``returning`` say what ``bulk_create`` cannot: which rows were new. SQLite takes a
``VALUES`` list through Django's cursor with each value prepared by its field (its scale is small).

Only plain values travel this way (str, int, bool, Decimal, date, aware datetime, None): the models written
here have no JSON or custom fields. Query-count assertions do not see these statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

from django.db import connection, models

# SQLite takes at most 32,766 parameters a statement; a few thousand rows a statement is past the point where
# bigger statements help. PostgreSQL's rows travel as one array per column (``unnest``), any number of them.
SQLITE_PARAMETERS = 32_766
MAX_ROWS = 5_000
UNNEST_ROWS = 20_000


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
    objs: Sequence[models.Model] | Sequence[tuple],
    *,
    model: type[models.Model] | None = None,
    fields: Sequence[str] | None = None,
    on_conflict: str = "",
    returning: str | None = None,
) -> list[tuple]:
    """INSERT ``objs``: instances of one model, or tuples of ``model``'s ``fields`` in that order (no instance to
    build: a tenth of the cost). ``fields``: the columns written, by field name (default every concrete field but
    an auto primary key). ``on_conflict``: the statement's ``ON CONFLICT …`` clause; ``returning``: columns to
    return, whose rows come back (PostgreSQL, SQLite ≥ 3.35)."""
    if not objs:
        return []
    model = model or type(objs[0])
    meta = model._meta
    if fields is None:
        chosen = [f for f in meta.concrete_fields if not isinstance(f, models.AutoField)]
    else:
        chosen = [meta.get_field(name) for name in fields]
    if isinstance(objs[0], models.Model):
        attnames = [f.attname for f in chosen]
        objs = [tuple(getattr(obj, name) for name in attnames) for obj in objs]
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in chosen)}) "
    tail = f" {on_conflict}" if on_conflict else ""
    if returning:
        tail += f" RETURNING {returning}"
    out: list[tuple] = []
    with server_cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array per column, unnested into rows: the statement's text is the same for every batch (psycopg
            # parses it once, and the server prepares it), however many rows it carries.
            for start in range(0, len(objs), UNNEST_ROWS):
                sql, params = _unnest(chosen, objs[start : start + UNNEST_ROWS])
                cursor.execute(f"{head}{sql}{tail}", params)
                if returning:
                    out.extend(cursor.fetchall())
            return out
        per_batch = max(1, min(MAX_ROWS, SQLITE_PARAMETERS // len(chosen)))
        row_sql = "(" + ", ".join(["%s"] * len(chosen)) + ")"
        for start in range(0, len(objs), per_batch):
            batch = objs[start : start + per_batch]
            params = [
                f.get_db_prep_save(value, connection) for row in batch for f, value in zip(chosen, row, strict=True)
            ]
            cursor.execute(f"{head}VALUES {', '.join([row_sql] * len(batch))}{tail}", params)
            if returning:
                out.extend(cursor.fetchall())
    return out


def _unnest(fields, rows: Sequence[tuple]) -> tuple[str, list]:
    """``SELECT …`` of ``rows``: a column whose every value is the same goes once, as a scalar (a sweep's messages
    share half their columns: the time, the language, the status…), the others as arrays unnested together."""
    selected, arrays, params = [], [], []
    for index, (field, column) in enumerate(zip(fields, zip(*rows, strict=True), strict=True)):
        db_type = field.db_type(connection)
        first = column[0]
        if all(value == first and type(value) is type(first) for value in column):
            selected.append(f"%s::{db_type}")
            params.append(first)
        else:
            selected.append(f"u.c{index}")
            arrays.append((f"%s::{db_type}[]", f"c{index}", list(column)))
    if not arrays:
        return f"SELECT {', '.join(selected)} FROM generate_series(1, {len(rows)})", params
    # Parameters in the order they appear in the text: the scalars in the select list, then the arrays.
    unnest = ", ".join(placeholder for placeholder, _name, _values in arrays)
    names = ", ".join(name for _placeholder, name, _values in arrays)
    params.extend(values for _placeholder, _name, values in arrays)
    return f"SELECT {', '.join(selected)} FROM unnest({unnest}) AS u({names})", params
