"""Names of this app's audit actions for the audit viewer (/staff/audit/) and the card's history
(``core.audit_labels``); the card's own panel labels stay in its ``panels.py``."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "api.token_nas_bound": _("API token bound to a NAS"),
        "api.token_nas_unbound": _("API token unbound from a NAS"),
    }
)
