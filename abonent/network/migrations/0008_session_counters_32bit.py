from importlib import import_module

from django.db import migrations, models

from abonent.core.migration_ops import PostgresOnlySQL

# network_write_sessions, fourth form: 0005's, with counters that wrap. A NAS that sends no Gigawords reports
# the low 32 bits of its octet counters, which wrap at 4 GiB (every 5 minutes at 115 Mbit/s). The upsert kept
# the greatest value, so after a wrap the session's total stood still until the counter passed the old value,
# and the traffic in between was never counted. A record marked "c32" (counters without Gigawords) that is
# newer than the row (more session time) and smaller than it is that wrap: the total goes on from it
# (accounting.grown_counter is the same rule in Python, for SQLite; accounting.mergeable keeps a wrap out of a
# merged batch). Records with Gigawords keep the greatest value, as before: a smaller one is an older record
# arriving late.
_0005 = import_module("abonent.network.migrations.0005_write_sessions_reused_ids")


def _grown(column: str) -> str:
    return (
        f"CASE WHEN EXCLUDED.counters_32bit AND EXCLUDED.{column} < s.{column}"
        f" AND EXCLUDED.session_time > s.session_time"
        f" THEN (((s.{column} >> 32) + (EXCLUDED.{column} < (s.{column} & 4294967295))::int) << 32)"
        f" | EXCLUDED.{column}"
        f" ELSE GREATEST(s.{column}, EXCLUDED.{column}) END"
    )


_REPLACEMENTS = [
    (
        "input_octets, output_octets, last_delta_in, last_delta_out, terminate_cause\n",
        "input_octets, output_octets, last_delta_in, last_delta_out, terminate_cause, counters_32bit\n",
    ),
    ("COALESCE(i.cause, '')\n", "COALESCE(i.cause, ''), COALESCE(i.c32, 0) = 1\n"),
    ("stop int, cause text)", "stop int, cause text, c32 int)"),
    (
        "last_delta_in = GREATEST(EXCLUDED.input_octets - s.input_octets, 0)",
        f"last_delta_in = GREATEST({_grown('input_octets')} - s.input_octets, 0)",
    ),
    (
        "last_delta_out = GREATEST(EXCLUDED.output_octets - s.output_octets, 0)",
        f"last_delta_out = GREATEST({_grown('output_octets')} - s.output_octets, 0)",
    ),
    (
        "input_octets = GREATEST(s.input_octets, EXCLUDED.input_octets)",
        f"input_octets = {_grown('input_octets')}",
    ),
    (
        "output_octets = GREATEST(s.output_octets, EXCLUDED.output_octets)",
        f"output_octets = {_grown('output_octets')},\n"
        "            counters_32bit = s.counters_32bit OR EXCLUDED.counters_32bit",
    ),
]
FUNCTION = _0005.FUNCTION
for _old, _new in _REPLACEMENTS:
    assert FUNCTION.count(_old) == 1, _old
    FUNCTION = FUNCTION.replace(_old, _new)


class Migration(migrations.Migration):
    dependencies = [("network", "0007_coa_superseded_error_codes")]

    operations = [
        migrations.AddField(
            model_name="session",
            name="counters_32bit",
            field=models.BooleanField(default=False, editable=False),
        ),
        PostgresOnlySQL(FUNCTION, _0005.FUNCTION),
    ]
