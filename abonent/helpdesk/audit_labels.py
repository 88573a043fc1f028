"""Names of the helpdesk's audit actions for the audit viewer (/staff/audit/; ``core.audit_labels`` finds this
module). The card's history reads the labels registered in ``panels.py``; issue 18's actions are named here for the
viewer and there for the card."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

LABELS = {
    "ticket.routed": _("Request: queue, assignee or priority changed"),
    "ticket.sla_escalated": _("Request escalated to the supervisor (SLA)"),
    "ticket.sla_first_response_breached": _("Request: first response overdue (SLA)"),
    "ticket.sla_resolution_breached": _("Request: resolution overdue (SLA)"),
}

register_action_labels(LABELS)
