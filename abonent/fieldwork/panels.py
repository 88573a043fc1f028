"""The subscriber card's "Visits" panel (``job.manage``): the subscriber's technician jobs, newest first; and the
names of field work's audit actions in the card's history."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from .audit_labels import ACTIONS, FIELDS
from .models import DeviceState, Job

RECENT = 10


def jobs_context(request, subscriber, **_ignored) -> dict:
    jobs = Job.objects.filter(subscriber=subscriber).select_related("installer").order_by("-day", "-starts_at", "-id")
    return {"jobs": list(jobs[:RECENT])}


PANEL = register_panel(Panel("jobs", _("Visits"), "fieldwork/panels/jobs.html", 13, jobs_context, Perm.JOB_MANAGE))

register_action_labels(ACTIONS, FIELDS, values={"state": dict(DeviceState.choices)})
