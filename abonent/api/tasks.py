import datetime as dt

from django_tasks import task

from abonent.core import clock
from abonent.core.scheduler import periodic

# Long enough for any client's retry loop (Stripe keeps keys 24 hours), short enough to keep the table small.
IDEMPOTENCY_RETENTION = dt.timedelta(days=7)


@periodic("api.prune_idempotency_records", daily_at=dt.time(4, 30))
@task()
def prune_idempotency_records() -> int:
    from .models import IdempotencyRecord

    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=clock.now() - IDEMPOTENCY_RETENTION).delete()
    return deleted
