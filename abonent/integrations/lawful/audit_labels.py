"""Names of this app's audit actions (``core.audit_labels``); the console's viewers do not show them (sealed)."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

register_action_labels(
    {
        "lawful.export_requested": _("Lawful request recorded"),
        "lawful.export_generated": _("Lawful export prepared"),
        "lawful.export_failed": _("Lawful export failed"),
        "lawful.export_downloaded": _("Lawful export downloaded"),
        "lawful.export_expired": _("Lawful export deleted at the end of its time"),
    }
)
