from django.db import migrations

from abonent.core.migration_ops import PostgresOnlySQL


class Migration(migrations.Migration):
    """Room in each page for the new version of a row, so an interim update of a session or a day's
    traffic stays on its page and writes no index (a HOT update). Accounting updates every open session every
    interim interval; this halves the write work per update."""

    dependencies = [("network", "0001_initial")]

    operations = [
        PostgresOnlySQL(
            "ALTER TABLE network_session SET (fillfactor = 70); ALTER TABLE network_usageday SET (fillfactor = 70);",
            "ALTER TABLE network_session RESET (fillfactor); ALTER TABLE network_usageday RESET (fillfactor);",
        ),
    ]
