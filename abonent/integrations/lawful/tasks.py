"""The lawful export's background work: a request's ZIP (never made in the web request: a year of sessions is a
minute of reading) and the periodic purge of files past their time."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@task(queue_name="default")
def generate_lawful_export(request_id: int) -> dict:
    from .actions import do_generate_export

    request = do_generate_export(request_id)
    return {"request": request_id, "status": request.status if request else None}


@periodic("lawful.purge_expired", every=dt.timedelta(minutes=10))
@task(queue_name="default")
def purge_expired_lawful_exports() -> int:
    from .actions import do_purge_expired_exports

    return do_purge_expired_exports()
