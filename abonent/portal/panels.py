"""The subscriber card's "Portal" panel (SUBSCRIBER_VIEW): whether a password is set, the last login, how many
sessions are live; with SUBSCRIBER_EDIT two buttons, both audited: text the subscriber a login code (the first
login's invitation) and end all portal sessions. Registered as every app's panel is; the subscribers app knows
nothing of the portal."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from .auth_data import portal_summary


def portal_context(request, subscriber, notice: str = "", error: str = "", **_ignored) -> dict:
    return {
        "portal": portal_summary(subscriber.pk),
        "can_edit": has_perm(request.user, Perm.SUBSCRIBER_EDIT),
        "notice": notice,
        "error": error,
    }


PANEL = register_panel(
    Panel("portal", _("Portal"), "portal/staff_panel.html", 12, portal_context, Perm.SUBSCRIBER_VIEW)
)


register_action_labels(
    {
        "portal.password_set": _("Portal password set"),
        "portal.autopay_consent": _("Autopay consent given"),
        "portal.password_changed": _("Portal password changed"),
        "portal.sessions_revoked": _("Portal sessions ended"),
        "portal.code_sent": _("Portal login code sent"),
    },
    fields={"sessions": _("sessions"), "channel": _("channel")},
)
