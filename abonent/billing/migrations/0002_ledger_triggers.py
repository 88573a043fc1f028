"""Database-level guards of the ledger (DESIGN.md §4a).

PostgreSQL:
- postings and transactions are append-only: UPDATE, DELETE and TRUNCATE raise;
- after each INSERT statement into postings, every transaction in it must sum to zero, and the cached
  balances of the subscriber accounts touched move by the sum of their new postings (set-based);
- an account's balance cannot be changed by hand (only from within that trigger) or created non-zero.
SQLite: the same append-only rule and a row trigger moving balances; the zero sum is checked by the code
that posts (``abonent.billing.ledger``), and ``abonent ledger verify`` checks everything on both.
"""

from django.db import migrations

PG_FORWARD = [
    """
    CREATE FUNCTION billing_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Emptying a whole table is allowed only when a session says so on purpose (the test suite's flush
        -- between tests); row edits and deletes never are.
        IF TG_OP = 'TRUNCATE' AND current_setting('abonent.allow_ledger_truncate', true) = 'on' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'the ledger is append-only: % on % refused (post a reversal instead)', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    """,
    """CREATE TRIGGER billing_posting_append_only BEFORE UPDATE OR DELETE ON billing_posting
       FOR EACH ROW EXECUTE FUNCTION billing_refuse_change()""",
    """CREATE TRIGGER billing_posting_no_truncate BEFORE TRUNCATE ON billing_posting
       FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change()""",
    """CREATE TRIGGER billing_transaction_append_only BEFORE UPDATE OR DELETE ON billing_ledgertransaction
       FOR EACH ROW EXECUTE FUNCTION billing_refuse_change()""",
    """CREATE TRIGGER billing_transaction_no_truncate BEFORE TRUNCATE ON billing_ledgertransaction
       FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change()""",
    """
    CREATE FUNCTION billing_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad bigint;
    BEGIN
        SELECT transaction_id INTO bad FROM new_postings GROUP BY transaction_id HAVING SUM(amount) <> 0 LIMIT 1;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'ledger transaction % does not balance: its postings must sum to zero', bad
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        UPDATE billing_ledgeraccount a SET balance = a.balance + d.total
          FROM (SELECT account_id, SUM(amount) AS total FROM new_postings GROUP BY account_id) d
         WHERE a.id = d.account_id AND a.kind = 'subscriber';
        RETURN NULL;
    END $$;
    """,
    """CREATE TRIGGER billing_posting_apply AFTER INSERT ON billing_posting
       REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION billing_apply_postings()""",
    """
    CREATE FUNCTION billing_guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' AND NEW.balance <> 0 THEN
            RAISE EXCEPTION 'a ledger account starts at zero' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        -- Depth 1 is a statement from outside; the posting trigger's own UPDATE runs at depth 2.
        IF TG_OP = 'UPDATE' AND NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'a balance changes only through ledger postings'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$;
    """,
    """CREATE TRIGGER billing_account_balance_guard BEFORE INSERT OR UPDATE OF balance ON billing_ledgeraccount
       FOR EACH ROW EXECUTE FUNCTION billing_guard_balance()""",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_account_balance_guard ON billing_ledgeraccount",
    "DROP TRIGGER IF EXISTS billing_posting_apply ON billing_posting",
    "DROP TRIGGER IF EXISTS billing_transaction_no_truncate ON billing_ledgertransaction",
    "DROP TRIGGER IF EXISTS billing_transaction_append_only ON billing_ledgertransaction",
    "DROP TRIGGER IF EXISTS billing_posting_no_truncate ON billing_posting",
    "DROP TRIGGER IF EXISTS billing_posting_append_only ON billing_posting",
    "DROP FUNCTION IF EXISTS billing_guard_balance()",
    "DROP FUNCTION IF EXISTS billing_apply_postings()",
    "DROP FUNCTION IF EXISTS billing_refuse_change()",
]
SQLITE_FORWARD = [
    """CREATE TRIGGER billing_posting_no_update BEFORE UPDATE ON billing_posting
       BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on billing_posting refused'); END""",
    """CREATE TRIGGER billing_posting_no_delete BEFORE DELETE ON billing_posting
       BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE on billing_posting refused'); END""",
    """CREATE TRIGGER billing_transaction_no_update BEFORE UPDATE ON billing_ledgertransaction
       BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: UPDATE on billing_ledgertransaction refused'); END""",
    """CREATE TRIGGER billing_transaction_no_delete BEFORE DELETE ON billing_ledgertransaction
       BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE on billing_ledgertransaction refused'); END""",
    """CREATE TRIGGER billing_posting_apply AFTER INSERT ON billing_posting
       BEGIN UPDATE billing_ledgeraccount SET balance = ROUND(balance + NEW.amount, 2)
             WHERE id = NEW.account_id AND kind = 'subscriber'; END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_posting_apply",
    "DROP TRIGGER IF EXISTS billing_transaction_no_delete",
    "DROP TRIGGER IF EXISTS billing_transaction_no_update",
    "DROP TRIGGER IF EXISTS billing_posting_no_delete",
    "DROP TRIGGER IF EXISTS billing_posting_no_update",
]


def _run(schema_editor, statements) -> None:
    # A plain cursor without parameters: the PL/pgSQL bodies use % as RAISE placeholders.
    with schema_editor.connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def forward(apps, schema_editor):
    pg = schema_editor.connection.vendor == "postgresql"
    _run(schema_editor, PG_FORWARD if pg else SQLITE_FORWARD)


def backward(apps, schema_editor):
    pg = schema_editor.connection.vendor == "postgresql"
    _run(schema_editor, PG_BACKWARD if pg else SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
