from django.db import connections

from abonent.reports.replica import REPLICA

# A replica alias for the replica test, as DATABASE_REPLICA_URL makes one: a mirror of the default test database
# (Django's TEST MIRROR), so what the test writes is what the replica reads. Without DATABASE_REPLICA_URL the reports
# read the default database, as in every other test; the replica test sets it.
if REPLICA not in connections.settings:
    connections.settings[REPLICA] = {**connections.settings["default"], "TEST": {"MIRROR": "default"}}
