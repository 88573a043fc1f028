from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

# One call writes a batch of accounting records: lock and read the stored totals (index probes in the
# caller's key order, so two writers cannot deadlock), upsert the sessions with counters that only grow, add
# each session's growth to the day's traffic, and return the (subscriber, day) pairs seen. One round trip and
# one implicit transaction instead of five; the accounting path is latency-bound (50 requests in flight), so
# this is its throughput. The Python fallback in abonent/network/accounting.py does the same on SQLite.
FUNCTION = """
CREATE OR REPLACE FUNCTION network_write_sessions(
    p_nas bigint[], p_uid text[], p_sid text[], p_login bigint[], p_sub bigint[], p_user text[], p_ip text[],
    p_calling text[], p_port text[], p_started timestamptz[], p_updated timestamptz[], p_stopped timestamptz[],
    p_time bigint[], p_in bigint[], p_out bigint[], p_cause text[], p_tz text
) RETURNS TABLE (subscriber_id bigint, day date)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    prev_nas bigint[];
    prev_uid text[];
    prev_in bigint[];
    prev_out bigint[];
BEGIN
    -- Locked before the upsert: another writer cannot change these totals between our read and our
    -- write, so a delta never counts twice. LATERAL keeps it one index probe per record.
    SELECT array_agg(p.nas_id), array_agg(p.unique_id), array_agg(p.input_octets), array_agg(p.output_octets)
      INTO prev_nas, prev_uid, prev_in, prev_out
      FROM unnest(p_nas, p_uid) AS t(nas_id, unique_id)
      CROSS JOIN LATERAL (
          SELECT s.nas_id, s.unique_id, s.input_octets, s.output_octets
          FROM network_session s
          WHERE s.nas_id = t.nas_id AND s.unique_id = t.unique_id
          FOR UPDATE
      ) p;
    RETURN QUERY
    WITH written AS (
        INSERT INTO network_session AS s (
            nas_id, unique_id, acct_session_id, login_id, subscriber_id, username, framed_ip,
            calling_station_id, nas_port_id, status, started_at, updated_at, stopped_at, session_time,
            input_octets, output_octets, terminate_cause
        )
        SELECT i.nas_id, i.unique_id, i.sid, i.login_id, i.subscriber_id, i.username, i.ip::inet, i.calling,
               i.port, CASE WHEN i.stopped_at IS NULL THEN 'open' ELSE 'closed' END, i.started_at, i.updated_at,
               i.stopped_at, i.session_time, i.input_octets, i.output_octets, i.cause
        FROM unnest(p_nas, p_uid, p_sid, p_login, p_sub, p_user, p_ip, p_calling, p_port, p_started, p_updated,
                    p_stopped, p_time, p_in, p_out, p_cause)
             AS i(nas_id, unique_id, sid, login_id, subscriber_id, username, ip, calling, port, started_at,
                  updated_at, stopped_at, session_time, input_octets, output_octets, cause)
        ON CONFLICT (nas_id, unique_id) DO UPDATE SET
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
        RETURNING s.nas_id, s.unique_id, s.subscriber_id, s.input_octets, s.output_octets, s.updated_at
    ),
    delta AS (
        SELECT w.subscriber_id, (w.updated_at AT TIME ZONE p_tz)::date AS day,
               w.input_octets - COALESCE(p.i, 0) AS din, w.output_octets - COALESCE(p.o, 0) AS dout
        FROM written w
        LEFT JOIN unnest(prev_nas, prev_uid, prev_in, prev_out) AS p(nas_id, unique_id, i, o)
               ON p.nas_id = w.nas_id AND p.unique_id = w.unique_id
        WHERE w.subscriber_id IS NOT NULL
    ),
    usage AS (
        INSERT INTO network_usageday AS u (subscriber_id, day, input_octets, output_octets)
        SELECT d.subscriber_id, d.day, sum(d.din), sum(d.dout)
        FROM delta d
        WHERE d.din > 0 OR d.dout > 0
        GROUP BY d.subscriber_id, d.day
        ORDER BY d.subscriber_id, d.day
        ON CONFLICT (subscriber_id, day) DO UPDATE SET
            input_octets = u.input_octets + EXCLUDED.input_octets,
            output_octets = u.output_octets + EXCLUDED.output_octets
    )
    SELECT DISTINCT d.subscriber_id, d.day FROM delta d;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("network", "0002_hot_updates")]

    operations = [PostgresOnlySQL(FUNCTION, "DROP FUNCTION IF EXISTS network_write_sessions")]
