"""The periodic job of incidents: open incidents' affected sets computed again, so those who connect to an affected
NAS after the incident was opened see its banner and get their tickets linked within minutes."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("incidents.refresh_affected", every=dt.timedelta(minutes=5))
@task(queue_name="default")
def refresh_affected() -> int:
    """Returns how many open incidents were refreshed. Safe to run twice: each refresh is idempotent."""
    from .actions import do_refresh_incident
    from .models import Incident, IncidentStatus

    ids = list(Incident.objects.filter(status=IncidentStatus.OPEN).values_list("pk", flat=True))
    for incident in Incident.objects.filter(pk__in=ids):
        do_refresh_incident(incident)
    return len(ids)
