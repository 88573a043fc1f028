"""Indexes for the first page of subscriber search on PostgreSQL (SQLite scans; it serves small installs).

The list is ordered by ``display_name, id``. A frequent term ("Иванов", "Ленина 5") is answered fastest by
walking that order and stopping at the first page of matches; a rare or clustered one (a surname whose
rows all sort under "С…") by the trigram index and a sort. ``selectors.search_subscribers`` walks a bounded
stretch of the order first and falls back to the trigram index, and this covering index makes the walk
index-only: each row costs a look at the index tuple, not a random heap page (about 1 µs instead of 5–100).

A btree tuple must stay under ~2.7 kB, and ``search_text`` grows with every address and device, so the
covering index holds the rows whose text fits (nearly all of them); the rest are found through the small
second index. ``COVERED_TEXT_BYTES`` in ``selectors`` must match the predicates here.
"""

from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL


class Migration(migrations.Migration):
    dependencies = [("subscribers", "0002_search_trigram_index")]

    operations = [
        PostgresOnlySQL(
            sql=[
                "CREATE INDEX IF NOT EXISTS subscribers_list_order_covering ON subscribers_subscriber "
                "(display_name, id) INCLUDE (branch_id, status, kind, search_text) "
                "WHERE octet_length(search_text) <= 1500",
                "CREATE INDEX IF NOT EXISTS subscribers_list_order_long_text ON subscribers_subscriber "
                "(display_name, id) WHERE octet_length(search_text) > 1500",
            ],
            reverse_sql=[
                "DROP INDEX IF EXISTS subscribers_list_order_long_text",
                "DROP INDEX IF EXISTS subscribers_list_order_covering",
            ],
        ),
    ]
