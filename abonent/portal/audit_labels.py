"""Names of this app's audit actions for the audit viewer (/staff/audit/) and the card's history
(``core.audit_labels``); the card's own panel labels stay in its ``panels.py``."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels({"portal.autopay_consent": _("Autopay consent given in the portal")})
