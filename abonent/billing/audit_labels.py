"""Names of this app's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this module).
The labels the subscriber card's history shows stay in the app's ``panels.py``, which the viewer reads as well."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "billing.bundle_created": _("Bundle created"),
        "billing.charge_reversed": _("Charge given back"),
        "billing.price_override_set": _("Individual price set"),
        "billing.price_override_ended": _("Individual price ended"),
        "billing.price_override_withdrawn": _("Individual price withdrawn"),
        "billing.promised_payment_reopened": _("Promised payment reopened"),
        "billing.promised_payment_expired": _("Promised payment expired"),
        "billing.promotion_created": _("Promotion created"),
        "billing.promotion_ended": _("Promotion ended"),
        "billing.refund_posted": _("Refund posted to the ledger"),
    }
)
