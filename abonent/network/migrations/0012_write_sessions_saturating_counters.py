from importlib import import_module

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

# network_write_sessions, sixth form: 0010's, with every counter and usage total saturating at the bigint's
# limit (2^63 - 1) instead of overflowing (issue 12). The reader accepts a total of up to 2^63 - 1 octets
# (Gigawords 2^31 - 1, acct_fields._counter), and two sums went past it:
# - the 32-bit wrap of 0008, ``((high + 1) << 32) | octets``, on a total with Gigawords 2^31 - 1: PostgreSQL's
#   ``<<`` wraps to a negative number and the delta beside it overflows;
# - the day's usage, ``u.input_octets + EXCLUDED.input_octets`` (and the batch's ``sum()`` inserted into a bigint),
#   once one session had filled the day: every later record of the subscriber that day overflowed.
# PostgreSQL raised "bigint out of range", the statement was refused, and the record lost (a Stop: the session
# stayed open). Now the wrap is held at 2^63 - 1 (and never below the stored total, as accounting.grown_counter),
# and a sum that would pass the limit is the limit: the test comes before the addition, which in bigint would
# raise before any LEAST saw it. Everything else is 0010's; same statement, same plan shape.
_0008 = import_module("abonent.network.migrations.0008_session_counters_32bit")
_0010 = import_module("abonent.network.migrations.0010_online_days_not_in_redirect")
MAX_COUNTER = "9223372036854775807"


def _grown(column: str) -> str:
    wrapped = f"(s.{column} >> 32) + (EXCLUDED.{column} < (s.{column} & 4294967295))::int"
    return (
        f"CASE WHEN EXCLUDED.counters_32bit AND EXCLUDED.{column} < s.{column}"
        f" AND EXCLUDED.session_time > s.session_time"
        # The high word past 2^31 - 1: the shift would pass bit 63.
        f" THEN CASE WHEN {wrapped} > 2147483647 THEN {MAX_COUNTER}"
        f" ELSE GREATEST(s.{column}, (({wrapped}) << 32) | EXCLUDED.{column}) END"
        f" ELSE GREATEST(s.{column}, EXCLUDED.{column}) END"
    )


def _added(column: str) -> str:
    return (
        f"CASE WHEN u.{column} > {MAX_COUNTER} - EXCLUDED.{column} THEN {MAX_COUNTER}"
        f" ELSE u.{column} + EXCLUDED.{column} END"
    )


_REPLACEMENTS = [
    # Each column's wrap rule is written twice: in its delta and in its new total.
    *((_0008._grown(column), _grown(column), 2) for column in ("input_octets", "output_octets")),
    (
        "SELECT w.sub, w.day, sum(w.delta_in), sum(w.delta_out)",
        # sum(bigint) is numeric: no overflow in it, only in the bigint it is stored in.
        f"SELECT w.sub, w.day, LEAST(sum(w.delta_in), {MAX_COUNTER})::bigint,"
        f" LEAST(sum(w.delta_out), {MAX_COUNTER})::bigint",
        1,
    ),
    *(
        (f"{column} = u.{column} + EXCLUDED.{column}", f"{column} = {_added(column)}", 1)
        for column in ("input_octets", "output_octets")
    ),
]
FUNCTION = _0010.FUNCTION
for _old, _new, _count in _REPLACEMENTS:
    assert FUNCTION.count(_old) == _count, _old
    FUNCTION = FUNCTION.replace(_old, _new)


class Migration(migrations.Migration):
    dependencies = [("network", "0011_radius_policy_age_and_stale_policy_reject")]

    operations = [PostgresOnlySQL(FUNCTION, _0010.FUNCTION)]
