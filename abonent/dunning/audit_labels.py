"""Names of this app's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this module).
The labels the subscriber card's history shows stay in the app's ``panels.py``, which the viewer reads as well."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "dunning.block": _("Access blocked by staff"),
        "dunning.unblock": _("Staff block lifted"),
        "dunning.terminate": _("Access terminated"),
        "dunning.reinstate": _("Access reinstated"),
        "dunning.exemption_create": _("Dunning exemption granted"),
        "dunning.exemption_revoke": _("Dunning exemption revoked"),
        "dunning.rule_save": _("Dunning rule saved"),
        "dunning.rule_delete": _("Dunning rule deleted"),
    }
)
