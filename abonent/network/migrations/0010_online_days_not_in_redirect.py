from importlib import import_module

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

# network_write_sessions, fifth form: 0008's, recording a day online only for a subscriber not in the debtor
# redirect (network_debtormark). A daily plan may charge only for days the subscriber was online (billing's
# OnlineDay); a debtor's router stays connected to the payment page, and those days were charged, so the debt
# grew while the subscriber had no service. One primary-key probe per subscriber of the batch. The same rule
# for SQLite is in accounting._write_sessions.
_0008 = import_module("abonent.network.migrations.0008_session_counters_32bit")
_OLD = "SELECT DISTINCT w.sub, w.day FROM written w WHERE w.sub IS NOT NULL ORDER BY 1, 2"
_NEW = (
    "SELECT DISTINCT w.sub, w.day FROM written w WHERE w.sub IS NOT NULL\n"
    "          AND NOT EXISTS (SELECT 1 FROM network_debtormark d WHERE d.subscriber_id = w.sub)\n"
    "        ORDER BY 1, 2"
)
assert _0008.FUNCTION.count(_OLD) == 1
FUNCTION = _0008.FUNCTION.replace(_OLD, _NEW)


class Migration(migrations.Migration):
    dependencies = [("network", "0009_quota_mark")]

    operations = [PostgresOnlySQL(FUNCTION, _0008.FUNCTION)]
