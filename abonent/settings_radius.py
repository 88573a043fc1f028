"""The RADIUS server's settings (docs/radius.md): addresses, ports, processes, the spool and the outage snapshot, rate
limits, database deadlines, the accounting queue; and network monitoring's (silent NAS, samples, pool alarms). Every
value comes from the environment; ``settings.py`` imports them all."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from abonent.settings_env import at_least_one as _at_least_one
from abonent.settings_env import var_dir

# RADIUS server (`abonent radius`): addresses, ports, processes, where accounting is spooled when the
# database is unreachable and where the last authorisation snapshot is kept for a restart during an outage.
ABONENT_RADIUS_BIND = os.environ.get("ABONENT_RADIUS_BIND", "0.0.0.0")  # noqa: S104 - a server for the NAS
ABONENT_RADIUS_AUTH_PORT = int(os.environ.get("ABONENT_RADIUS_AUTH_PORT", 1812))
ABONENT_RADIUS_ACCT_PORT = int(os.environ.get("ABONENT_RADIUS_ACCT_PORT", 1813))
ABONENT_RADIUS_PROCESSES = int(os.environ.get("ABONENT_RADIUS_PROCESSES", 1))
ABONENT_RADIUS_SPOOL_DIR = Path(os.environ.get("ABONENT_RADIUS_SPOOL_DIR", var_dir() / "radius"))
# Seconds a policy read from the database (or restored from the snapshot) answers NEW logins while the database
# is unreachable; past it only logins that had a session open are let in. 0: no limit (docs/radius.md).
ABONENT_RADIUS_SNAPSHOT_MAX_AGE = int(os.environ.get("ABONENT_RADIUS_SNAPSHOT_MAX_AGE", 4 * 3600))
# An open session counts toward simultaneous use for this many of its NAS's interim intervals since its last
# update (plus a grace of 30 s, at most 2 hours): a NAS that reboots without Accounting-On frees its subscribers
# that soon. The stale-session sweeper closes it then too (network.selectors.session_alive_seconds).
ABONENT_RADIUS_SESSION_ALIVE_INTERVALS = _at_least_one("ABONENT_RADIUS_SESSION_ALIVE_INTERVALS", 3)
# Bad authentications (a wrong password, an unknown login) allowed per login a minute and per NAS a second,
# in each RADIUS process; over them a request is rejected unchecked (docs/radius.md, "Rate limits"). 0: no limit.
ABONENT_RADIUS_BAD_AUTH_PER_LOGIN = int(os.environ.get("ABONENT_RADIUS_BAD_AUTH_PER_LOGIN", 10))
ABONENT_RADIUS_BAD_AUTH_PER_NAS = int(os.environ.get("ABONENT_RADIUS_BAD_AUTH_PER_NAS", 50))
# Authentication attempts written per RADIUS process a minute (at most 3 per NAS, login and reason), and the
# days they are kept.
ABONENT_RADIUS_ATTEMPTS_PER_MINUTE = int(os.environ.get("ABONENT_RADIUS_ATTEMPTS_PER_MINUTE", 1000))
ABONENT_RADIUS_ATTEMPT_DAYS = int(os.environ.get("ABONENT_RADIUS_ATTEMPT_DAYS", 30))
# Deadlines of `abonent radius`'s database waits (docs/radius.md, "Timeouts"), in seconds. An accounting write
# (a batch, an Accounting-On/Off, a spool replay statement) unanswered for ABONENT_RADIUS_DB_TIMEOUT is given up:
# the records are spooled and the NAS answered, so every Accounting-Request is answered within about twice it
# (accel-ppp ends a session whose accounting goes unanswered for its acct-timeout, 3 s by default). The
# maintenance thread's reads (policy, NAS table) and writes (attempts, counters) get the longer one.
ABONENT_RADIUS_DB_TIMEOUT = float(os.environ.get("ABONENT_RADIUS_DB_TIMEOUT", 1.0))
ABONENT_RADIUS_DB_MAINTENANCE_TIMEOUT = float(os.environ.get("ABONENT_RADIUS_DB_MAINTENANCE_TIMEOUT", 30.0))
# Accounting records a process holds for the database at most; past it a request is dropped unanswered (the NAS
# resends it) and counted (accounting_queue_full): a flood must not run the process out of memory.
ABONENT_RADIUS_QUEUE_MAX = int(os.environ.get("ABONENT_RADIUS_QUEUE_MAX", 100_000))
# Network monitoring (docs/radius.md, "Monitoring"). A NAS that had sessions online and sent no accounting for this
# many minutes (at least two of its interim intervals) is flagged silent; the samples of each NAS are kept this many
# days; an address pool is flagged at these percentages of its addresses in use.
ABONENT_NETWORK_SILENT_MINUTES = _at_least_one("ABONENT_NETWORK_SILENT_MINUTES", 15)
ABONENT_NETWORK_SAMPLE_DAYS = _at_least_one("ABONENT_NETWORK_SAMPLE_DAYS", 35)
ABONENT_NETWORK_POOL_WARNING_PERCENT = _at_least_one("ABONENT_NETWORK_POOL_WARNING_PERCENT", 80)
ABONENT_NETWORK_POOL_DANGER_PERCENT = _at_least_one("ABONENT_NETWORK_POOL_DANGER_PERCENT", 95)
if not ABONENT_NETWORK_POOL_WARNING_PERCENT <= ABONENT_NETWORK_POOL_DANGER_PERCENT <= 100:
    raise ImproperlyConfigured(
        "ABONENT_NETWORK_POOL_WARNING_PERCENT must not exceed ABONENT_NETWORK_POOL_DANGER_PERCENT, nor that 100"
    )
