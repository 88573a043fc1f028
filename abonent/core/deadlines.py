"""A deadline on the database waits of one transaction.

``with transaction.atomic(): db_deadline(lock=3, statement=10)`` makes PostgreSQL give up a lock wait after
``lock`` seconds and any statement after ``statement`` seconds, for the rest of that transaction only
(``set_config(..., true)`` is ``SET LOCAL``: a pooled connection goes back to the pool without it). The waits
end in ``OperationalError`` (SQLSTATE 55P03 or 57014; ``is_deadline``), which the API answers with 503 and a
payment channel with its "try again later". SQLite waits at most its own busy timeout (settings).
"""

from __future__ import annotations

from django.db import OperationalError, connection

DEADLINE_SQLSTATES = {"55P03", "57014"}  # lock_not_available, query_canceled


def db_deadline(*, lock: float, statement: float, unless_set: bool = False) -> None:
    """``unless_set``: keep a deadline the caller already set in this transaction (a terminal's view sets the
    agent's; the intake it calls must not replace it with its own, longer or shorter). Every deadline set here or
    by such a caller marks the transaction with ``abonent.deadline``."""
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("db_deadline() applies to a transaction: call it inside transaction.atomic()")
    guard = "current_setting('abonent.deadline', true) IS DISTINCT FROM 'on'" if unless_set else "true"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT CASE WHEN {guard} THEN set_config('lock_timeout', %s, true) END, "
            f"CASE WHEN {guard} THEN set_config('statement_timeout', %s, true) END, "
            "set_config('abonent.deadline', 'on', true)",
            [f"{int(lock * 1000)}ms", f"{int(statement * 1000)}ms"],
        )


def is_deadline(exc: BaseException) -> bool:
    """Whether ``exc`` is a database wait that ran past its deadline (or a lock it could not get)."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) in DEADLINE_SQLSTATES
