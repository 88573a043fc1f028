import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("staff.prune_login_attempts", daily_at=dt.time(4, 0))
@task()
def prune_login_attempts() -> int:
    from .actions import do_prune_login_attempts

    return do_prune_login_attempts()
