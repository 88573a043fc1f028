"""The ledger's references checked once per statement instead of row by row (ADR 0010).

Migration 0003 took the per-row foreign keys off the append-only tables: ``posting.transaction``,
``posting.account``, ``charge.transaction``, ``charge.subscription`` and ``charge.price``. What they guaranteed
is kept here:

PostgreSQL:
- after each INSERT statement into postings, ``billing_apply_postings`` (migration 0002's zero-sum and balance
  trigger) also checks that every transaction and account the statement names exists. Subscriber accounts are
  row-locked by the balance UPDATE it already makes; the few system accounts of a statement are locked
  ``FOR KEY SHARE``, as a foreign key would lock them, so neither can be deleted before the insert commits;
- after each INSERT statement into charges, ``billing_check_charges`` checks the transactions, subscriptions
  and prices it names, locking the subscriptions and prices ``FOR KEY SHARE`` (the billing run already holds
  its subscriptions ``FOR UPDATE``, so that lock costs only the lookup);
- the balance guard of 0002 is decided in its trigger's WHEN, so the posting trigger's balance updates no
  longer call it (same rule: only an UPDATE from within a trigger may move a balance);
- transactions are append-only (0002), so nothing can take one away; ledger accounts with postings,
  subscriptions with charges and plan prices with charges refuse DELETE. The price check scans charges (no
  index on ``charge.price``): prices are only ever added, so that path is for a mistake, not for traffic.
SQLite: the same checks as row triggers (one writer at a time, so no locks are needed).

SQLite rebuilds a table for most column changes, dropping its triggers, and refuses to while another table's
trigger names it: 0003 dropped migration 0002's SQLite triggers to rebuild the ledger tables, and they are created
again here. A later migration that alters these tables (or ``catalog_planprice``) on SQLite must do the same.
"""

import importlib

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL

previous = importlib.import_module("abonent.billing.migrations.0002_ledger_triggers")

APPLY_POSTINGS = """
CREATE OR REPLACE FUNCTION billing_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
    others bigint[];
    held integer;
BEGIN
    SELECT transaction_id INTO bad FROM new_postings GROUP BY transaction_id HAVING SUM(amount) <> 0 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: its postings must sum to zero', bad
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- A statement names one transaction (ledger.post) or a few (a billing-run chunk): cheap to look up.
    SELECT n.transaction_id INTO bad FROM (SELECT DISTINCT transaction_id FROM new_postings) n
     WHERE NOT EXISTS (SELECT 1 FROM billing_ledgertransaction t WHERE t.id = n.transaction_id) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'a posting names ledger transaction %, which does not exist', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- Subscriber accounts: the balance moves, and the UPDATE's row lock keeps the account from being deleted.
    -- Every other account named (system accounts, a handful per statement, or one that does not exist) is
    -- collected for the check below.
    WITH moves AS (
        SELECT account_id, SUM(amount) AS total FROM new_postings GROUP BY account_id
    ), moved AS (
        UPDATE billing_ledgeraccount a SET balance = a.balance + m.total
          FROM moves m
         WHERE a.id = m.account_id AND a.kind = 'subscriber'
        RETURNING a.id
    )
    SELECT array_agg(m.account_id) INTO others FROM moves m WHERE m.account_id NOT IN (SELECT id FROM moved);
    IF others IS NOT NULL THEN
        SELECT COUNT(*) INTO held FROM (
            SELECT 1 FROM billing_ledgeraccount a WHERE a.id = ANY(others) FOR KEY SHARE OF a
        ) AS locked;
        IF held <> cardinality(others) THEN
            SELECT o INTO bad FROM unnest(others) AS o
             WHERE NOT EXISTS (SELECT 1 FROM billing_ledgeraccount a WHERE a.id = o) LIMIT 1;
            RAISE EXCEPTION 'a posting names ledger account %, which does not exist', bad
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$;
"""
# Migration 0002's body, for going back.
APPLY_POSTINGS_0002 = """
CREATE OR REPLACE FUNCTION billing_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""
CHECK_CHARGES = """
CREATE FUNCTION billing_check_charges() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
    wanted integer;
    held integer;
BEGIN
    SELECT n.transaction_id INTO bad FROM (SELECT DISTINCT transaction_id FROM new_charges) n
     WHERE NOT EXISTS (SELECT 1 FROM billing_ledgertransaction t WHERE t.id = n.transaction_id) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'a charge names ledger transaction %, which does not exist', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT COUNT(DISTINCT subscription_id) INTO wanted FROM new_charges;
    SELECT COUNT(*) INTO held FROM (
        SELECT 1 FROM billing_subscription s WHERE s.id IN (SELECT subscription_id FROM new_charges)
        FOR KEY SHARE OF s
    ) AS locked;
    IF held <> wanted THEN
        SELECT n.subscription_id INTO bad FROM new_charges n
         WHERE NOT EXISTS (SELECT 1 FROM billing_subscription s WHERE s.id = n.subscription_id) LIMIT 1;
        RAISE EXCEPTION 'a charge names subscription %, which does not exist', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT COUNT(DISTINCT price_id) INTO wanted FROM new_charges;
    IF wanted > 0 THEN
        SELECT COUNT(*) INTO held FROM (
            SELECT 1 FROM catalog_planprice p WHERE p.id IN (SELECT price_id FROM new_charges) FOR KEY SHARE OF p
        ) AS locked;
        IF held <> wanted THEN
            SELECT n.price_id INTO bad FROM new_charges n
             WHERE n.price_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM catalog_planprice p WHERE p.id = n.price_id)
             LIMIT 1;
            RAISE EXCEPTION 'a charge names plan price %, which does not exist', bad
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$;
"""
REFUSE_DELETE_REFERENCED = """
CREATE FUNCTION billing_refuse_delete_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    -- Runs after the row lock is taken, with a fresh snapshot: an insert that held the row (the references'
    -- FOR KEY SHARE, a balance UPDATE, the billing run's FOR UPDATE) has committed and is seen here.
    IF TG_TABLE_NAME = 'billing_ledgeraccount' THEN
        referenced := EXISTS (SELECT 1 FROM billing_posting WHERE account_id = OLD.id);
    ELSIF TG_TABLE_NAME = 'billing_subscription' THEN
        referenced := EXISTS (SELECT 1 FROM billing_charge WHERE subscription_id = OLD.id);
    ELSE
        referenced := EXISTS (SELECT 1 FROM billing_charge WHERE price_id = OLD.id);
    END IF;
    IF referenced THEN
        RAISE EXCEPTION '% % is referenced by the ledger and cannot be deleted', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
"""
PG_FORWARD = [
    APPLY_POSTINGS,
    CHECK_CHARGES,
    """CREATE TRIGGER billing_charge_check AFTER INSERT ON billing_charge
       REFERENCING NEW TABLE AS new_charges FOR EACH STATEMENT EXECUTE FUNCTION billing_check_charges()""",
    """CREATE TRIGGER billing_charge_no_update BEFORE UPDATE OF transaction_id, subscription_id, price_id
       ON billing_charge FOR EACH ROW EXECUTE FUNCTION billing_refuse_change()""",
    REFUSE_DELETE_REFERENCED,
    """CREATE TRIGGER billing_account_keep_referenced BEFORE DELETE ON billing_ledgeraccount
       FOR EACH ROW EXECUTE FUNCTION billing_refuse_delete_referenced()""",
    """CREATE TRIGGER billing_subscription_keep_referenced BEFORE DELETE ON billing_subscription
       FOR EACH ROW EXECUTE FUNCTION billing_refuse_delete_referenced()""",
    """CREATE TRIGGER billing_price_keep_referenced BEFORE DELETE ON catalog_planprice
       FOR EACH ROW EXECUTE FUNCTION billing_refuse_delete_referenced()""",
    # The balance guard (0002) is a PL/pgSQL call per updated account; the posting trigger's own UPDATE (trigger
    # depth 1) is the one path allowed to move a balance, so it no longer calls the guard at all: the same
    # rule, decided in the trigger's WHEN instead of in its body, and 10,000 function calls fewer per chunk.
    "DROP TRIGGER billing_account_balance_guard ON billing_ledgeraccount",
    """CREATE TRIGGER billing_account_balance_guard_insert BEFORE INSERT ON billing_ledgeraccount
       FOR EACH ROW WHEN (NEW.balance <> 0) EXECUTE FUNCTION billing_guard_balance()""",
    """CREATE TRIGGER billing_account_balance_guard BEFORE UPDATE OF balance ON billing_ledgeraccount
       FOR EACH ROW WHEN (pg_trigger_depth() < 1 AND NEW.balance IS DISTINCT FROM OLD.balance)
       EXECUTE FUNCTION billing_guard_balance()""",
    # A billing run updates every subscription's cursor and every charged subscriber's balance once, inside
    # chunk transactions: for those updates to be HOT (no index entries), a page needs room for a new version
    # of each of its rows while the old ones are still live. Half of each page is kept free, and the tables
    # are rewritten once (CLUSTER, by id: the order the run takes them in) so the room is there from the
    # next run on. CLUSTER holds an exclusive lock for seconds per million rows: run this migration with
    # the billing run stopped.
    "ALTER TABLE billing_subscription SET (fillfactor = 50)",
    "ALTER TABLE billing_ledgeraccount SET (fillfactor = 50)",
    "CLUSTER billing_subscription USING billing_subscription_pkey",
    "CLUSTER billing_ledgeraccount USING billing_ledgeraccount_pkey",
]
PG_BACKWARD = [
    "ALTER TABLE billing_ledgeraccount RESET (fillfactor)",
    "ALTER TABLE billing_subscription RESET (fillfactor)",
    "DROP TRIGGER billing_account_balance_guard ON billing_ledgeraccount",
    "DROP TRIGGER billing_account_balance_guard_insert ON billing_ledgeraccount",
    """CREATE TRIGGER billing_account_balance_guard BEFORE INSERT OR UPDATE OF balance ON billing_ledgeraccount
       FOR EACH ROW EXECUTE FUNCTION billing_guard_balance()""",
    "DROP TRIGGER IF EXISTS billing_price_keep_referenced ON catalog_planprice",
    "DROP TRIGGER IF EXISTS billing_subscription_keep_referenced ON billing_subscription",
    "DROP TRIGGER IF EXISTS billing_account_keep_referenced ON billing_ledgeraccount",
    "DROP FUNCTION IF EXISTS billing_refuse_delete_referenced()",
    "DROP TRIGGER IF EXISTS billing_charge_no_update ON billing_charge",
    "DROP TRIGGER IF EXISTS billing_charge_check ON billing_charge",
    "DROP FUNCTION IF EXISTS billing_check_charges()",
    APPLY_POSTINGS_0002,
]


def _sqlite_guard(name: str, table: str, event: str, condition: str, message: str) -> str:
    return (
        f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN {condition} "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


SQLITE_TRIGGERS = [
    _sqlite_guard(
        "billing_posting_transaction_exists",
        "billing_posting",
        "INSERT",
        "NOT EXISTS (SELECT 1 FROM billing_ledgertransaction WHERE id = NEW.transaction_id)",
        "a posting names a ledger transaction that does not exist",
    ),
    _sqlite_guard(
        "billing_posting_account_exists",
        "billing_posting",
        "INSERT",
        "NOT EXISTS (SELECT 1 FROM billing_ledgeraccount WHERE id = NEW.account_id)",
        "a posting names a ledger account that does not exist",
    ),
    _sqlite_guard(
        "billing_charge_subscription_exists",
        "billing_charge",
        "INSERT",
        "NOT EXISTS (SELECT 1 FROM billing_subscription WHERE id = NEW.subscription_id)",
        "a charge names a subscription that does not exist",
    ),
    _sqlite_guard(
        "billing_charge_price_exists",
        "billing_charge",
        "INSERT",
        "NEW.price_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM catalog_planprice WHERE id = NEW.price_id)",
        "a charge names a plan price that does not exist",
    ),
    "CREATE TRIGGER billing_charge_no_update BEFORE UPDATE OF transaction_id, subscription_id, price_id "
    "ON billing_charge BEGIN SELECT RAISE(ABORT, 'the references of a charge cannot be changed'); END",
    _sqlite_guard(
        "billing_account_keep_referenced",
        "billing_ledgeraccount",
        "DELETE",
        "EXISTS (SELECT 1 FROM billing_posting WHERE account_id = OLD.id)",
        "a ledger account with postings cannot be deleted",
    ),
    _sqlite_guard(
        "billing_subscription_keep_referenced",
        "billing_subscription",
        "DELETE",
        "EXISTS (SELECT 1 FROM billing_charge WHERE subscription_id = OLD.id)",
        "a subscription with charges cannot be deleted",
    ),
    _sqlite_guard(
        "billing_price_keep_referenced",
        "catalog_planprice",
        "DELETE",
        "EXISTS (SELECT 1 FROM billing_charge WHERE price_id = OLD.id)",
        "a plan price that charges name cannot be deleted",
    ),
]
SQLITE_NAMES = [sql.split()[2] for sql in SQLITE_TRIGGERS]


def _run(schema_editor, statements) -> None:
    # A plain cursor without parameters: the PL/pgSQL bodies use % as RAISE placeholders.
    with schema_editor.connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def sqlite_forward(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    # 0002's triggers, dropped by 0003 to rebuild their tables, then the reference checks.
    _run(schema_editor, previous.SQLITE_FORWARD + SQLITE_TRIGGERS)


def sqlite_backward(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    # 0002's go too: 0003, going back, rebuilds their tables and creates them again.
    _run(schema_editor, [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_NAMES] + previous.SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_ledger_without_row_foreign_keys"),
        ("catalog", "0001_initial"),
    ]

    operations = [
        PostgresOnlySQL(PG_FORWARD, PG_BACKWARD),
        migrations.RunPython(sqlite_forward, sqlite_backward),
    ]
