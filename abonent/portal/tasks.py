"""The login's housekeeping: attempts and codes are only needed for as long as they can count."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic

# A lock-out looks back ABONENT_PORTAL_LOCKOUT_SECONDS and the code allowance an hour; a month of attempts is
# kept for the record (who hammered which login), a day of codes for the subscriber's questions.
KEEP_ATTEMPTS = dt.timedelta(days=30)
KEEP_CODES = dt.timedelta(days=1)


@periodic("portal.prune_login_records", daily_at=dt.time(4, 20))
@task()
def prune_login_records() -> int:
    from .actions import do_prune_login_records

    return do_prune_login_records(attempts_older_than=KEEP_ATTEMPTS, codes_older_than=KEEP_CODES)
