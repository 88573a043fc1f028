from importlib import import_module

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

# network_write_sessions, third form: 0004's upsert, preceded by one step for a session id used again.
# A NAS's Acct-Session-Id counter can restart after a reboot, so a new session can arrive with the id (and
# so the unique id) of one the reboot closed. Merged into that closed row, the new session would never show
# as open, and its counters, restarting from zero, would add nothing to the day's traffic until they passed
# the old totals. So a Start ("start": 1 in the batch) for a session closed by Accounting-On/Off ("NAS-Reboot")
# or by the sweeper ("Stale"), dated after it closed, first moves the old row aside under a key of its own
# (its unique id with ":<row id>"); the Start then inserts a row of its own. A row closed by a Stop keeps
# taking records as before: a Start arriving after its Stop is that session's late Start.
_0004 = import_module("abonent.network.migrations.0004_write_sessions_plpgsql")
_SET_ASIDE = """BEGIN
    UPDATE network_session AS s
       SET unique_id = left(s.unique_id, 40) || ':' || s.id
      FROM json_to_recordset(p_rows) AS i(nas bigint, uid text, at timestamptz, start int)
     WHERE i.start = 1 AND s.nas_id = i.nas AND s.unique_id = i.uid AND s.status = 'closed'
       AND s.terminate_cause IN ('NAS-Reboot', 'Stale') AND i.at > s.stopped_at;
    RETURN QUERY"""
assert _0004.FUNCTION.count("BEGIN\n    RETURN QUERY") == 1
FUNCTION = _0004.FUNCTION.replace("BEGIN\n    RETURN QUERY", _SET_ASIDE)


class Migration(migrations.Migration):
    dependencies = [("network", "0004_write_sessions_plpgsql")]

    operations = [PostgresOnlySQL(FUNCTION, _0004.FUNCTION)]
