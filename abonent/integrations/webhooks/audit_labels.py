"""Names of this app's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this module)."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "webhooks.endpoint_created": _("Webhook endpoint created"),
        "webhooks.endpoint_changed": _("Webhook endpoint changed"),
        "webhooks.secret_rotated": _("Webhook secret rotated"),
        "webhooks.redelivery_requested": _("Webhook redelivery requested"),
        "webhooks.token_created": _("Integration token created"),
        "webhooks.token_revoked": _("Integration token revoked"),
    }
)
