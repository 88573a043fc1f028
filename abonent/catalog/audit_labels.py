"""Names of this app's audit actions for the audit viewer (/staff/audit/) and the card's history
(``core.audit_labels``); the card's own panel labels stay in its ``panels.py``."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "catalog.plan_created": _("Plan created"),
        "catalog.price_added": _("Plan price added"),
        "catalog.service_created": _("Service created"),
        "catalog.time_package_created": _("Time package created"),
        "catalog.turbo_created": _("Turbo option created"),
        "catalog.turbo_updated": _("Turbo option changed"),
    }
)
