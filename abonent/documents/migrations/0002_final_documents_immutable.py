"""A final document and its PDF are never changed or deleted, whoever asks (docs/documents.md).

PostgreSQL: row triggers refuse UPDATE and DELETE of a final document and of any stored file; TRUNCATE is
allowed only to a session that opts in (the test suite's flush, like the ledger's). SQLite: the same row rules.
A draft may still be edited or deleted.
"""

from django.db import migrations

PG_FORWARD = [
    """
    CREATE FUNCTION documents_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'documents_document' AND OLD.status <> 'final' THEN
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'final documents never change: % on % refused (issue a correction instead)', TG_OP,
            TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    """,
    """CREATE TRIGGER documents_document_final BEFORE UPDATE OR DELETE ON documents_document
       FOR EACH ROW EXECUTE FUNCTION documents_refuse_change()""",
    """CREATE TRIGGER documents_file_final BEFORE UPDATE OR DELETE ON documents_documentfile
       FOR EACH ROW EXECUTE FUNCTION documents_refuse_change()""",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS documents_file_final ON documents_documentfile",
    "DROP TRIGGER IF EXISTS documents_document_final ON documents_document",
    "DROP FUNCTION IF EXISTS documents_refuse_change()",
]
SQLITE_FORWARD = [
    """CREATE TRIGGER documents_document_no_update BEFORE UPDATE ON documents_document WHEN OLD.status = 'final'
       BEGIN SELECT RAISE(ABORT, 'final documents never change: UPDATE on documents_document refused'); END""",
    """CREATE TRIGGER documents_document_no_delete BEFORE DELETE ON documents_document WHEN OLD.status = 'final'
       BEGIN SELECT RAISE(ABORT, 'final documents never change: DELETE on documents_document refused'); END""",
    """CREATE TRIGGER documents_file_no_update BEFORE UPDATE ON documents_documentfile
       BEGIN SELECT RAISE(ABORT, 'final documents never change: UPDATE on documents_documentfile refused'); END""",
    """CREATE TRIGGER documents_file_no_delete BEFORE DELETE ON documents_documentfile
       BEGIN SELECT RAISE(ABORT, 'final documents never change: DELETE on documents_documentfile refused'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS documents_file_no_delete",
    "DROP TRIGGER IF EXISTS documents_file_no_update",
    "DROP TRIGGER IF EXISTS documents_document_no_delete",
    "DROP TRIGGER IF EXISTS documents_document_no_update",
]


def _run(schema_editor, statements) -> None:
    # A plain cursor without parameters: the PL/pgSQL body uses % as RAISE placeholders.
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
    dependencies = [("documents", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
