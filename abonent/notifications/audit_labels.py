"""Names of this app's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this module).
The labels the subscriber card's history shows stay in the app's ``panels.py``, which the viewer reads as well."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "notifications.bulk_created": _("Bulk message created"),
        "notifications.bulk_cancelled": _("Bulk message cancelled"),
        "notifications.email_unsubscribed": _("Unsubscribed from e-mail"),
        "notifications.telegram_link_issued": _("Telegram link issued"),
        "notifications.telegram_linked": _("Telegram chat linked"),
        "notifications.template_saved": _("Message template saved"),
        "notifications.template_reset": _("Message template reset"),
    }
)
