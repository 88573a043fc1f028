# UsageDay.late: a day written to after it was over, which the traffic rating re-checks (then clears), instead of
# re-reading every rated period in its lookback. network_write_sessions, seventh form: 0012's, marking a day it adds
# to when the day is before today in the operator's time zone (``p_tz``, as the day itself is computed). A row
# whose mark does not change stays a HOT update: the partial index is touched only by late rows.
from importlib import import_module

from django.db import migrations, models

from abonent.core.migration_ops import PostgresOnlySQL

_0012 = import_module("abonent.network.migrations.0012_write_sessions_saturating_counters")
MAX_COUNTER = _0012.MAX_COUNTER
_REPLACEMENTS = [
    (
        "INSERT INTO network_usageday AS u (subscriber_id, day, input_octets, output_octets)",
        "INSERT INTO network_usageday AS u (subscriber_id, day, input_octets, output_octets, late)",
        1,
    ),
    (
        f"LEAST(sum(w.delta_out), {MAX_COUNTER})::bigint\n",
        f"LEAST(sum(w.delta_out), {MAX_COUNTER})::bigint,\n"
        "               w.day < (now() AT TIME ZONE p_tz)::date\n",
        1,
    ),
    (
        f"output_octets = {_0012._added('output_octets')}",
        f"output_octets = {_0012._added('output_octets')},\n            late = u.late OR EXCLUDED.late",
        1,
    ),
]
FUNCTION = _0012.FUNCTION
for _old, _new, _count in _REPLACEMENTS:
    assert FUNCTION.count(_old) == _count, _old
    FUNCTION = FUNCTION.replace(_old, _new)


class Migration(migrations.Migration):
    dependencies = [
        ("network", "0016_usage_records"),
        ("subscribers", "0004_search_text_bytes_statistics"),
    ]

    operations = [
        migrations.AddField(
            model_name="usageday",
            name="late",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddIndex(
            model_name="usageday",
            index=models.Index(
                condition=models.Q(("late", True)), fields=["subscriber", "day"], name="network_usageday_late"
            ),
        ),
        PostgresOnlySQL(FUNCTION, _0012.FUNCTION),
    ]
