from importlib import import_module

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

# network_write_sessions, third form: 0004's upsert, preceded by one step for a session id used again, and
# followed by one that records the days online.
# A NAS's Acct-Session-Id counter can restart after a reboot, so a new session can arrive with the id (and
# so the unique id) of one the reboot closed. Merged into that closed row, the new session would never show
# as open, and its counters, restarting from zero, would add nothing to the day's traffic until they passed
# the old totals. So a Start ("start": 1 in the batch) for a session closed by Accounting-On/Off ("NAS-Reboot")
# or by the sweeper ("Stale"), dated after it closed, first moves the old row aside under a key of its own
# (its unique id with ":<row id>"); the Start then inserts a row of its own. A row closed by a Stop keeps
# taking records as before: a Start arriving after its Stop is that session's late Start.
_0004 = import_module("abonent.network.migrations.0004_write_sessions_plpgsql")
# Only a batch with a Start pays for this, one probe of the unique index per Start: a set-based UPDATE … FROM
# the batch was planned (generically) as a scan of every session, which cut the interim rate by half.
_SET_ASIDE = """AS $$
DECLARE
    r record;
BEGIN
    IF strpos(p_rows::text, '"start":1') > 0 THEN
        FOR r IN SELECT i.nas, i.uid, i.at
                   FROM json_to_recordset(p_rows) AS i(nas bigint, uid text, at timestamptz, start int)
                  WHERE i.start = 1
        LOOP
            UPDATE network_session AS s
               SET unique_id = left(s.unique_id, 40) || ':' || s.id
             WHERE s.nas_id = r.nas AND s.unique_id = r.uid AND s.status = 'closed'
               AND s.terminate_cause IN ('NAS-Reboot', 'Stale') AND r.at > s.stopped_at;
        END LOOP;
    END IF;
    RETURN QUERY"""
# And the days online are recorded here too (billing's OnlineDay, which accounting writes: DESIGN.md), in the
# same statement: through billing's action on a thread, a batch with a pair not yet seen held the connection
# back, and just after midnight, when every subscriber's first record of the day brings one, interims went
# from 5,500/s to 2,200/s.
_ONLINE = """    ),
    online AS (
        INSERT INTO billing_onlineday AS o (subscriber_id, day)
        SELECT DISTINCT w.sub, w.day FROM written w WHERE w.sub IS NOT NULL ORDER BY 1, 2
        ON CONFLICT (subscriber_id, day) DO NOTHING
    )
    SELECT DISTINCT w.sub, w.day FROM written w WHERE w.sub IS NOT NULL;"""
_RETURN = """    )
    SELECT DISTINCT w.sub, w.day FROM written w WHERE w.sub IS NOT NULL;"""
assert _0004.FUNCTION.count("AS $$\nBEGIN\n    RETURN QUERY") == 1 and _0004.FUNCTION.count(_RETURN) == 1
FUNCTION = _0004.FUNCTION.replace("AS $$\nBEGIN\n    RETURN QUERY", _SET_ASIDE).replace(_RETURN, _ONLINE)


class Migration(migrations.Migration):
    dependencies = [("network", "0004_write_sessions_plpgsql")]

    operations = [PostgresOnlySQL(FUNCTION, _0004.FUNCTION)]
