"""The bulk-message audience only this app can compute: the subscribers of a NAS ("the switch in building 5 will
be down tonight"). A subscriber counts with a session open on it, or one that was updated in the last
``RECENT_DAYS`` days: who uses that NAS now, not who once did."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from abonent.core import clock
from abonent.notifications.audiences import Audience, register_audience

from .models import Nas, Session, SessionStatus

RECENT_DAYS = 30


def nas_choices() -> list[tuple[int, str]]:
    return list(Nas.objects.order_by("name").values_list("pk", "name"))


def nas_subscriber_ids(nas_id: int) -> QuerySet:
    """Distinct subscriber ids, as a query the notifications app counts and reads in chunks. ``order_by()``
    drops the sessions' default ordering, which would otherwise be selected too and defeat the DISTINCT."""
    since = clock.now() - dt.timedelta(days=RECENT_DAYS)
    return (
        Session.objects.filter(nas_id=nas_id, subscriber_id__isnull=False)
        .filter(Q(status=SessionStatus.OPEN) | Q(updated_at__gte=since))
        .order_by()
        .values_list("subscriber_id", flat=True)
        .distinct()
    )


NAS_AUDIENCE = register_audience(
    Audience(key="nas", label=_("Subscribers of a NAS"), choices=nas_choices, subscriber_ids=nas_subscriber_ids)
)
