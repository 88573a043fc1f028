"""Names of this app's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this module).
The labels the subscriber card's history shows stay in the app's ``panels.py``, which the viewer reads as well."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "network.nas_created": _("NAS added"),
        "network.nas_updated": _("NAS changed"),
        "network.pool_created": _("Address pool added"),
        "network.usage_records_added": _("Traffic records added"),
    },
    fields={"secret_changed": _("shared secret changed")},
)
