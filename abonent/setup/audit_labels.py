"""Names of the wizard's audit actions for the audit viewer (``core.audit_labels``)."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels({"setup.step_completed": _("Set-up step completed")}, fields={"step": _("step")})
