"""The periodic job of incidents: open incidents' affected sets computed again, so those who connect to an affected
NAS after the incident was opened see its banner and get their tickets linked within minutes."""

import datetime as dt
import logging

from django_tasks import task

from abonent.core.scheduler import periodic

logger = logging.getLogger(__name__)


@periodic("incidents.refresh_affected", every=dt.timedelta(minutes=5))
@task(queue_name="default")
def refresh_affected() -> int:
    """Returns how many open incidents were refreshed. Safe to run twice: each refresh is idempotent. An incident
    whose row is held past the lock deadline (a long edit or compensation) is left to the next run, not allowed to
    stop the refresh of the others."""
    from django.db import OperationalError

    from abonent.core.deadlines import is_deadline

    from .actions import do_refresh_incident
    from .models import Incident, IncidentStatus

    ids = list(Incident.objects.filter(status=IncidentStatus.OPEN).order_by("pk").values_list("pk", flat=True))
    refreshed = 0
    for incident in Incident.objects.filter(pk__in=ids).order_by("pk"):
        try:
            do_refresh_incident(incident)
        except OperationalError as exc:
            if not is_deadline(exc):
                raise
            logger.warning("incident %s: busy past the lock deadline, left to the next refresh", incident.pk)
            continue
        refreshed += 1
    return refreshed
