"""The helpdesk's periodic job: the SLA sweep (escalations and breaches, helpdesk/escalation.py)."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("helpdesk.sla_sweep", every=dt.timedelta(minutes=1))
@task(queue_name="default")
def sla_sweep() -> dict:
    from .escalation import sweep

    return sweep()
