"""Bulk loading for the seeders (``abonent seed``, the benchmarks): rows streamed with COPY on PostgreSQL (executemany
elsewhere) while the next chunk is generated, and the loaded tables' foreign keys and plain indexes set aside and
rebuilt once. Test data at benchmark scale only: it bypasses the actions on purpose (subscribers/seeding.py)."""

from __future__ import annotations

import queue
import threading
import time

from django.db import connection


def next_id(model) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: list[tuple]) -> str:
    """Rows in PostgreSQL's COPY text format (``str()`` of each value: booleans as True/False, dates ISO)."""
    text = "\n".join(["\t".join(["\\N" if v is None else str(v) for v in row]) for row in rows]) + "\n"
    # Generated values never hold a tab, newline or backslash; if one ever does, escape value by value.
    nulls = sum(row.count(None) for row in rows)
    if (
        text.count("\t") != len(rows) * (len(rows[0]) - 1)
        or text.count("\n") != len(rows)
        or text.count("\\") != nulls
        or "\r" in text
    ):
        text = "".join(
            "\t".join(["\\N" if v is None else str(v).translate(_COPY_ESCAPES) for v in row]) + "\n" for row in rows
        )
    return text


class BulkWriter:
    """Bulk insert: COPY on PostgreSQL, executemany elsewhere.

    On PostgreSQL a thread streams each chunk to the server while the next one is generated: the server's
    work (parsing, heap, unique indexes) overlaps with Python's instead of following it. It uses the raw
    connection, in the caller's transaction, and the caller touches the database only after ``close()``.
    """

    def __init__(self):
        self.pg = connection.vendor == "postgresql"
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        if not self.pg:
            marks = ", ".join(["%s"] * len(columns))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            return
        if self._thread is None:
            connection.ensure_connection()
            self._thread = threading.Thread(target=self._copy_loop, args=(connection.connection,), daemon=True)
            self._thread.start()
        if self._error is not None:
            self.close()
        self._queue.put((f"COPY {table} ({', '.join(columns)}) FROM STDIN", copy_text(rows).encode()))

    def _copy_loop(self, raw) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: the main thread raises at its next write or close
            statement, data = item
            try:
                with raw.cursor() as cursor, cursor.copy(statement) as copy:
                    copy.write(data)
            except BaseException as exc:
                self._error = exc

    def close(self) -> None:
        """Wait for every chunk to reach the server; raise what went wrong there."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def reset_sequences(self, models) -> None:
        if not self.pg:
            return
        with connection.cursor() as cursor:
            for model in models:
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 1))"
                )


class DeferredIndexes:
    """On PostgreSQL, the foreign keys and plain (non-unique) indexes of the loaded tables, set aside for a bulk load.

    Primary keys, unique indexes and checks stay: the load still proves those as it goes. Everything is
    done in the caller's transaction, so a failed load leaves the schema as it was.
    """

    def __init__(self, tables: list[str]):
        self.tables = tables
        self.foreign_keys: list[tuple[str, str, str]] = []
        self.indexes: list[tuple[str, str]] = []

    def drop(self) -> None:
        with connection.cursor() as cursor:
            # Deferred foreign-key checks still queued in this transaction (rows an earlier step inserted)
            # would block the ALTER TABLEs: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[]) ORDER BY c.oid",
                [self.tables],
            )
            self.foreign_keys = cursor.fetchall()
            cursor.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisunique AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY i.indexrelid",
                [self.tables],
            )
            self.indexes = cursor.fetchall()
            for table, name, _ in self.foreign_keys:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            for name, _ in self.indexes:
                cursor.execute(f"DROP INDEX {name}")

    def restore(self, out) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # Sorting for an index build in memory rather than in temporary files; the GIN trigram index
            # in particular builds several times faster with room to collect its entries.
            cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
            for name, definition in self.indexes:
                started = time.monotonic()
                cursor.execute(definition)
                out.write(f"index {name}: {time.monotonic() - started:.1f}s\n")
            started = time.monotonic()
            for table, name, definition in self.foreign_keys:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
            out.write(f"foreign keys ({len(self.foreign_keys)}) checked in {time.monotonic() - started:.1f}s\n")


def reserve_ids(model, count: int) -> list[int]:
    """``count`` primary keys for rows the caller inserts itself (COPY, executemany), in its transaction.

    PostgreSQL: taken from the table's sequence, so concurrent writers never get the same ones. SQLite: the ids
    after the current maximum, which are free while the transaction holds the write lock (``IMMEDIATE``, as every
    transaction here does) — the caller must not commit between reserving and inserting."""
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", [count]
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        first = cursor.fetchone()[0] + 1
    return list(range(first, first + count))


def matching(queryset, column: str, values: list):
    """``queryset`` narrowed to rows whose ``column`` is one of ``values``, for lists of many thousands.

    On PostgreSQL one array parameter (``= ANY(%s)``) instead of ``__in``: Django prepares an ``IN`` list value by
    value, which costs more than the query itself at import scale (100,000 logins, serials, phones). Elsewhere
    ``__in``; the caller keeps each call to a few thousand values (SQLite's limit on parameters)."""
    if connection.vendor != "postgresql":
        return queryset.filter(**{f"{column}__in": values})
    from django.db.models import BooleanField
    from django.db.models.expressions import RawSQL

    field = queryset.model._meta.get_field(column)
    qualified = f'"{queryset.model._meta.db_table}"."{field.column}"'
    # The identifiers come from the model's metadata, the values travel as one parameter: nothing is interpolated.
    condition = RawSQL(f"{qualified} = ANY(%s)", (list(values),), output_field=BooleanField())  # noqa: S611
    return queryset.filter(condition)
