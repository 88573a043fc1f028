"""The names of field work's audit actions, for the audit viewer and the card's history."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import register_action_labels

from .models import DeviceState

ACTIONS = {
    "stock.model_created": _("Device model added"),
    "stock.received": _("Devices received"),
    "stock.moved": _("Device moved"),
    "job.created": _("Job booked"),
    "job.rescheduled": _("Job rescheduled"),
    "job.cancelled": _("Job cancelled"),
    "job.closed": _("Job done"),
    "job.checklist_template": _("Job checklist changed"),
}
FIELDS = {
    "state": _("state"),
    "installer": _("installer"),
    "installer_id": _("installer"),
    "job": _("job"),
    "serials": _("serial numbers"),
    "removed": _("taken away"),
    "done_items": _("done items"),
    "subscriber_created": _("subscriber created"),
    "result": _("result"),
    "day": _("date"),
    "starts_at": _("from"),
    "ends_at": _("to"),
    "items": _("items"),
}
register_action_labels(ACTIONS, FIELDS, values={"state": DeviceState.choices})
