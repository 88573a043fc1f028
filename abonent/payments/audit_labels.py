"""Names of this app's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this module).
The labels the subscriber card's history shows stay in the app's ``panels.py``, which the viewer reads as well."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "payments.received": _("Payment taken"),
        "payments.assigned": _("Payment assigned to a subscriber"),
        "payments.cancelled": _("Payment cancelled"),
        "payments.refunded": _("Payment refunded"),
        "payments.returned": _("Payment returned to the payer"),
        "payments.suspense": _("Payment put in suspense"),
        "payments.conflict": _("Payment conflict recorded"),
        "payments.conflict_resolved": _("Payment conflict resolved"),
        "payments.cash_day_closed": _("Cash day closed"),
        "payments.statement_imported": _("Bank statement imported"),
        "payments.agent_created": _("Payment agent added"),
        "payments.agent_changed": _("Payment agent changed"),
        "payments.agent_secret_rotated": _("Payment agent secret changed"),
        "payments.checkout_started": _("Online payment started"),
        "payments.checkout_succeeded": _("Online payment paid"),
        "payments.checkout_failed": _("Online payment not paid"),
        "payments.refund_pending": _("Refund sent to the gateway"),
        "payments.refund_succeeded": _("Refund done"),
        "payments.refund_failed": _("Refund failed"),
        "payments.gateway_refund_unrecorded": _("Gateway refund not recorded here"),
        "payments.receipt_failed": _("Receipt failed"),
        "payments.receipt_retried": _("Receipt sent again"),
        "payments.receipt_dropped": _("Receipt dropped"),
    }
)
