"""The audiences this app knows itself: a subscriber group and a branch (``network`` registers the NAS)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.core.models import Branch
from abonent.subscribers.models import Subscriber, SubscriberGroup

from .audiences import Audience, register_audience

GROUP = register_audience(
    Audience(
        key="group",
        label=_("Subscriber group"),
        choices=lambda: list(SubscriberGroup.objects.order_by("name").values_list("pk", "name")),
        subscriber_ids=lambda pk: Subscriber.objects.filter(groups=pk).values_list("pk", flat=True),
    )
)
BRANCH = register_audience(
    Audience(
        key="branch",
        label=_("Branch"),
        choices=lambda: list(Branch.objects.filter(is_active=True).order_by("name").values_list("pk", "name")),
        subscriber_ids=lambda pk: Subscriber.objects.filter(branch=pk).values_list("pk", flat=True),
    )
)
