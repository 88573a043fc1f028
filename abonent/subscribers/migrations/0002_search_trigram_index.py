"""Trigram index for subscriber search on PostgreSQL (SQLite scans; it serves small installs).

``LIKE '%term%'`` over a million ``search_text`` values is answered from this GIN index. pg_trgm is a
trusted extension since PostgreSQL 13, so the database owner can create it (see docs/operations.md).
"""

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            sql=[
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                "CREATE INDEX IF NOT EXISTS subscribers_search_trgm ON subscribers_subscriber "
                "USING gin (search_text gin_trgm_ops)",
            ],
            reverse_sql=["DROP INDEX IF EXISTS subscribers_search_trgm"],
        ),
    ]
