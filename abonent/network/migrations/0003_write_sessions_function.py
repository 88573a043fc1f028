from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

# One call writes a batch of accounting records: upsert the sessions (in the caller's key order, so two
# writers lock rows in the same order and cannot deadlock) with counters that only grow, each row keeping the
# growth its update made, add that growth to the day's traffic, and return the (subscriber, day) pairs seen.
# One round trip and one implicit transaction instead of five; the accounting path is latency-bound (50
# requests in flight), so this is its throughput. The Python path in abonent/network/accounting.py does the
# same on SQLite.
FUNCTION = """
CREATE OR REPLACE FUNCTION network_write_sessions(
    p_nas bigint[], p_uid text[], p_sid text[], p_login bigint[], p_sub bigint[], p_user text[], p_ip text[],
    p_calling text[], p_port text[], p_started timestamptz[], p_updated timestamptz[], p_stopped timestamptz[],
    p_time bigint[], p_in bigint[], p_out bigint[], p_cause text[], p_tz text
) RETURNS TABLE (subscriber_id bigint, day date)
LANGUAGE sql AS $$
    WITH written AS (
        INSERT INTO network_session AS s (
            nas_id, unique_id, acct_session_id, login_id, subscriber_id, username, framed_ip,
            calling_station_id, nas_port_id, status, started_at, updated_at, stopped_at, session_time,
            input_octets, output_octets, last_delta_in, last_delta_out, terminate_cause
        )
        SELECT i.nas_id, i.unique_id, i.sid, i.login_id, i.subscriber_id, i.username, i.ip::inet, i.calling,
               i.port, CASE WHEN i.stopped_at IS NULL THEN 'open' ELSE 'closed' END, i.started_at, i.updated_at,
               i.stopped_at, i.session_time, i.input_octets, i.output_octets, i.input_octets, i.output_octets,
               i.cause
        FROM unnest(p_nas, p_uid, p_sid, p_login, p_sub, p_user, p_ip, p_calling, p_port, p_started, p_updated,
                    p_stopped, p_time, p_in, p_out, p_cause)
             AS i(nas_id, unique_id, sid, login_id, subscriber_id, username, ip, calling, port, started_at,
                  updated_at, stopped_at, session_time, input_octets, output_octets, cause)
        ON CONFLICT (nas_id, unique_id) DO UPDATE SET
            -- The growth, computed here under the row lock of the update: no other writer can have moved
            -- the totals in between, so a delta never counts twice.
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
        RETURNING s.subscriber_id, (s.updated_at AT TIME ZONE p_tz)::date AS day, s.last_delta_in, s.last_delta_out
    ),
    usage AS (
        INSERT INTO network_usageday AS u (subscriber_id, day, input_octets, output_octets)
        SELECT w.subscriber_id, w.day, sum(w.last_delta_in), sum(w.last_delta_out)
        FROM written w
        WHERE w.subscriber_id IS NOT NULL AND (w.last_delta_in > 0 OR w.last_delta_out > 0)
        GROUP BY w.subscriber_id, w.day
        ORDER BY w.subscriber_id, w.day
        ON CONFLICT (subscriber_id, day) DO UPDATE SET
            input_octets = u.input_octets + EXCLUDED.input_octets,
            output_octets = u.output_octets + EXCLUDED.output_octets
    )
    SELECT DISTINCT w.subscriber_id, w.day FROM written w WHERE w.subscriber_id IS NOT NULL;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("network", "0002_hot_updates")]

    operations = [PostgresOnlySQL(FUNCTION, "DROP FUNCTION IF EXISTS network_write_sessions")]
