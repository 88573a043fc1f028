"""Names of this app's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this module).
The labels the subscriber card's history shows stay in the app's ``panels.py``, which the viewer reads as well."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "staff.login": _("Signed in"),
        "staff.user_created": _("Staff user created"),
        "staff.api_token_created": _("API token created"),
        "staff.api_token_revoked": _("API token revoked"),
        "staff.two_factor_enabled": _("Two-factor authentication turned on"),
        "staff.two_factor_reset": _("Two-factor authentication turned off"),
        "staff.recovery_codes_regenerated": _("Recovery codes replaced"),
        "admin.staffuser_password_changed": _("Password changed in the administration"),
        "staff.audit_exported": _("Audit log exported"),
    }
)
