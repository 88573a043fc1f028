"""The audience of a "send a message" bulk action for the notifications app: the subscribers of that action's set
the rules left in (``BulkActionItem`` done). Not offered in the bulk-message form: it is made on the subscriber
list."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from abonent.notifications.audiences import Audience, register_audience

from .models import BulkAction, BulkActionItem, BulkKind, ItemOutcome


def _label(pk: int) -> str:
    action = BulkAction.objects.filter(pk=pk, kind=BulkKind.MESSAGE).first()
    if action is None:
        return ""
    return gettext("Subscribers chosen on the list (bulk action #%(id)s)") % {"id": action.pk}


SELECTION = register_audience(
    Audience(
        key="bulk",
        label=_("Subscribers chosen on the list"),
        choices=list,
        subscriber_ids=lambda pk: BulkActionItem.objects.filter(action_id=pk, outcome=ItemOutcome.DONE).values_list(
            "subscriber_id", flat=True
        ),
        listed=False,
        label_of=_label,
    )
)
