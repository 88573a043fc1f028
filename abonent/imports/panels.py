"""The old system's payment history on the subscriber card: history only, no ledger effect."""

from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm
from abonent.subscribers.panels import Panel, register_panel

from .models import LegacyPayment

HISTORY_ROWS = 50

register_panel(
    Panel(
        name="legacy-payments",
        title=_("Payments in the old system"),
        template="imports/panels/legacy_payments.html",
        order=75,
        context=lambda request, subscriber: {
            "legacy_payments": list(LegacyPayment.objects.filter(subscriber=subscriber)[:HISTORY_ROWS])
        },
        permission=Perm.BILLING_VIEW,
    )
)
