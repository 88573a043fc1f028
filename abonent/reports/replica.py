"""Where the reports read from: the read replica when ``DATABASE_REPLICA_URL`` is set (the alias ``replica``),
else the default database. Every selector of the reports passes ``using=reading_db()`` to its querysets and
cursors and never writes through it; writes (the facts' rollup, cached results) go to the default database.

A replica lags the primary by its replication delay (usually well under a second): a report read from it may miss
what was written in that instant, which a report of days and months does not notice (docs/scaling.md).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections

REPLICA = "replica"


def reading_db() -> str:
    """The alias the reports read from (settings.py makes the alias from ``DATABASE_REPLICA_URL``)."""
    return REPLICA if getattr(settings, "DATABASE_REPLICA_URL", "") and REPLICA in connections.settings else "default"


def reading_connection():
    return connections[reading_db()]
