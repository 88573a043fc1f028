from importlib import import_module

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

# network_write_sessions, second form: the same upsert as 0003, with two costs removed that the accounting
# benchmark measured (docs/radius.md, "Performance").
# - PL/pgSQL instead of a SQL function: PostgreSQL (before 18) plans a SQL function's body on every call,
#   about 1 ms per batch; PL/pgSQL keeps the plan, and a generic one suits a statement whose only inputs are
#   a document and a time zone.
# - The batch arrives as one JSON array of objects instead of sixteen arrays: json_to_recordset reads it in C,
#   where dumping sixteen Python lists cost the server about 50 µs per record. A record carries the event
#   time once (the start and the stop are derived here) and leaves out what is empty.
# The upsert itself is unchanged: rows in the caller's key order (two writers lock in the same order and
# cannot deadlock), counters that only grow, each row keeping the growth its own update made (computed under
# the row lock, so a delta never counts twice), and that growth added to the day's traffic.
FUNCTION = """
DROP FUNCTION IF EXISTS network_write_sessions(
    bigint[], text[], text[], bigint[], bigint[], text[], text[], text[], text[], timestamptz[], timestamptz[],
    timestamptz[], bigint[], bigint[], bigint[], text[], text);

CREATE OR REPLACE FUNCTION network_write_sessions(p_rows json, p_tz text)
RETURNS TABLE (out_subscriber_id bigint, out_day date)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    WITH written AS (
        INSERT INTO network_session AS s (
            nas_id, unique_id, acct_session_id, login_id, subscriber_id, username, framed_ip,
            calling_station_id, nas_port_id, status, started_at, updated_at, stopped_at, session_time,
            input_octets, output_octets, last_delta_in, last_delta_out, terminate_cause
        )
        SELECT i.nas, i.uid, i.sid, i.login, i.sub, i.usr, i.ip::inet, COALESCE(i.calling, ''),
               COALESCE(i.port, ''), CASE WHEN i.stop IS NULL THEN 'open' ELSE 'closed' END,
               i.at - i.secs * interval '1 second', i.at, CASE WHEN i.stop IS NOT NULL THEN i.at END,
               i.secs, i.octets_in, i.octets_out, i.octets_in, i.octets_out, COALESCE(i.cause, '')
        -- Keys left out of a record (no login, no address, not a Stop) read as NULL.
        FROM json_to_recordset(p_rows) AS i(
            nas bigint, uid text, sid text, usr text, at timestamptz, secs bigint, octets_in bigint,
            octets_out bigint, login bigint, sub bigint, ip text, calling text, port text, stop int, cause text)
        ON CONFLICT (nas_id, unique_id) DO UPDATE SET
            last_delta_in = GREATEST(EXCLUDED.input_octets - s.input_octets, 0),
            last_delta_out = GREATEST(EXCLUDED.output_octets - s.output_octets, 0),
            input_octets = GREATEST(s.input_octets, EXCLUDED.input_octets),
            output_octets = GREATEST(s.output_octets, EXCLUDED.output_octets),
            session_time = GREATEST(s.session_time, EXCLUDED.session_time),
            started_at = LEAST(s.started_at, EXCLUDED.started_at),
            updated_at = GREATEST(s.updated_at, EXCLUDED.updated_at),
            framed_ip = COALESCE(EXCLUDED.framed_ip, s.framed_ip),
            login_id = COALESCE(s.login_id, EXCLUDED.login_id),
            subscriber_id = COALESCE(s.subscriber_id, EXCLUDED.subscriber_id),
            -- Closed stays closed, except a session the sweeper closed as Stale that turns out to be alive
            -- (its records were delayed, e.g. spooled through an outage): a newer record reopens it.
            status = CASE WHEN s.status = 'closed' AND s.terminate_cause = 'Stale' AND EXCLUDED.status = 'open'
                               AND EXCLUDED.updated_at > s.stopped_at THEN 'open'
                          WHEN s.status = 'closed' OR EXCLUDED.status = 'closed' THEN 'closed'
                          ELSE 'open' END,
            stopped_at = CASE WHEN s.status = 'closed' AND s.terminate_cause = 'Stale' AND EXCLUDED.status = 'open'
                                   AND EXCLUDED.updated_at > s.stopped_at THEN NULL
                              WHEN s.terminate_cause = 'Stale' AND EXCLUDED.status = 'closed' THEN EXCLUDED.stopped_at
                              ELSE COALESCE(s.stopped_at, EXCLUDED.stopped_at) END,
            terminate_cause = CASE WHEN s.terminate_cause = 'Stale' AND EXCLUDED.status = 'open'
                                        AND EXCLUDED.updated_at > s.stopped_at THEN ''
                                   WHEN s.terminate_cause = 'Stale' AND EXCLUDED.status = 'closed'
                                        THEN EXCLUDED.terminate_cause
                                   WHEN s.terminate_cause <> '' THEN s.terminate_cause
                                   ELSE EXCLUDED.terminate_cause END
        RETURNING s.subscriber_id AS sub, (s.updated_at AT TIME ZONE p_tz)::date AS day,
                  s.last_delta_in AS delta_in, s.last_delta_out AS delta_out
    ),
    usage AS (
        INSERT INTO network_usageday AS u (subscriber_id, day, input_octets, output_octets)
        SELECT w.sub, w.day, sum(w.delta_in), sum(w.delta_out)
        FROM written w
        WHERE w.sub IS NOT NULL AND (w.delta_in > 0 OR w.delta_out > 0)
        GROUP BY w.sub, w.day
        ORDER BY w.sub, w.day
        ON CONFLICT (subscriber_id, day) DO UPDATE SET
            input_octets = u.input_octets + EXCLUDED.input_octets,
            output_octets = u.output_octets + EXCLUDED.output_octets
    )
    SELECT DISTINCT w.sub, w.day FROM written w WHERE w.sub IS NOT NULL;
END;
$$;
"""

# Going back restores 0003's function.
REVERSE = (
    "DROP FUNCTION IF EXISTS network_write_sessions(json, text);\n"
    + import_module("abonent.network.migrations.0003_write_sessions_function").FUNCTION
)


class Migration(migrations.Migration):
    dependencies = [("network", "0003_write_sessions_function")]

    operations = [PostgresOnlySQL(FUNCTION, REVERSE)]
