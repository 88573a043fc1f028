"""Console forms of the helpdesk: the list's filters, a reply, a status change, a ticket opened from the card."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from abonent.core import clock
from abonent.core.forms import ConsoleForm
from abonent.network.models import Nas
from abonent.staff.permissions import ROLE_PERMISSIONS, Perm

from . import rules
from .models import Queue, TicketCategory, TicketPriority, TicketSource, TicketStatus
from .report import BY_ASSIGNEE, BY_QUEUE
from .selectors import (
    ALL,
    ASSIGNEE_ME,
    ASSIGNEE_NONE,
    OPEN,
    SLA_AT_RISK,
    SLA_ON_TRACK,
    SLA_OVERDUE,
    SLA_PAUSED,
)


def ticket_handlers():
    """Active staff whose role handles requests, by name: the assignee choices."""
    roles = [role for role, perms in ROLE_PERMISSIONS.items() if Perm.TICKET_MANAGE in perms]
    return get_user_model().objects.filter(is_active=True, role__in=roles).order_by("username")


def _person(user) -> str:
    return user.full_name or user.username


def _any(choices) -> list:
    return [("", _("Any")), *choices]


class TicketFilterForm(ConsoleForm):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[(OPEN, _("Open")), (ALL, _("All")), *TicketStatus.choices]
    )
    category = forms.ChoiceField(label=_("Category"), required=False, choices=_any(TicketCategory.choices))
    priority = forms.ChoiceField(label=_("Priority"), required=False, choices=_any(TicketPriority.choices))
    source = forms.ChoiceField(label=_("Source"), required=False, choices=_any(TicketSource.choices))
    q = forms.CharField(label=_("Number, account or words"), required=False, max_length=100)
    queue = forms.ModelChoiceField(label=_("Queue"), required=False, queryset=Queue.objects.all(), empty_label=_("Any"))
    assignee = forms.ChoiceField(label=_("Assignee"), required=False)
    sla = forms.ChoiceField(
        label=_("SLA"),
        required=False,
        choices=_any(
            [
                (SLA_OVERDUE, _("Overdue")),
                (SLA_AT_RISK, _("Escalated, not yet overdue")),
                (SLA_PAUSED, _("Paused (waiting for the subscriber)")),
                (SLA_ON_TRACK, _("On track")),
            ]
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = _any(
            [
                (ASSIGNEE_ME, _("Me")),
                (ASSIGNEE_NONE, _("Nobody")),
                *((str(u.pk), _person(u)) for u in ticket_handlers()),
            ]
        )


class ReplyForm(ConsoleForm):
    text = forms.CharField(
        label=_("Message"), max_length=rules.TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 4})
    )
    visibility = forms.ChoiceField(
        label=_("Who sees it"),
        choices=[("public", _("Reply to the subscriber")), ("internal", _("Internal note (staff only)"))],
        initial="public",
        widget=forms.RadioSelect,
    )
    status = forms.ChoiceField(
        label=_("Status after this"), required=False, choices=[("", _("Leave as it is")), *TicketStatus.choices]
    )
    attachment = forms.FileField(
        label=_("File"),
        required=False,
        max_length=500,
        help_text=_("An image, a PDF or a text file."),
    )


class RoutingForm(ConsoleForm):
    """The ticket's queue, assignee, priority and what it is about (a NAS, a device of the subscriber)."""

    queue = forms.ModelChoiceField(label=_("Queue"), required=False, queryset=Queue.objects.all())
    assignee = forms.ModelChoiceField(label=_("Assignee"), required=False, queryset=get_user_model().objects.none())
    priority = forms.ChoiceField(label=_("Priority"), choices=TicketPriority.choices)
    nas = forms.ModelChoiceField(label=_("NAS"), required=False, queryset=Nas.objects.order_by("name"))
    equipment = forms.ChoiceField(label=_("Device"), required=False)
    reason = forms.CharField(label=_("Reason (for the log)"), required=False, max_length=500)

    def __init__(self, *args, ticket, **kwargs):
        from abonent.subscribers.models import EquipmentAssignment

        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = ticket_handlers()
        self.fields["assignee"].label_from_instance = _person
        devices = (
            EquipmentAssignment.objects.filter(subscriber_id=ticket.subscriber_id)
            .select_related("equipment")
            .order_by("-assigned_at")
        )
        seen = {}
        for row in devices:
            device = row.equipment
            seen.setdefault(str(device.pk), " ".join(filter(None, [device.vendor, device.model, device.serial_number])))
        self.fields["equipment"].choices = [("", "---------"), *seen.items()]


class SlaReportForm(ConsoleForm):
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(
        label=_("By"), required=False, choices=[(BY_QUEUE, _("Queue")), (BY_ASSIGNEE, _("Assignee"))]
    )

    def period(self) -> tuple[dt.date, dt.date, str]:
        """The chosen period (this month so far by default) and grouping."""
        data = self.cleaned_data if self.is_valid() else {}
        today = clock.today()
        date_from = data.get("date_from") or today.replace(day=1)
        date_to = data.get("date_to") or today
        if date_to < date_from:
            date_from, date_to = date_to, date_from
        return date_from, date_to, data.get("group_by") or BY_QUEUE


class StatusForm(ConsoleForm):
    status = forms.ChoiceField(label=_("Status"), choices=TicketStatus.choices)
    reason = forms.CharField(label=_("Reason (for the log)"), required=False, max_length=500)


class TicketOpenForm(ConsoleForm):
    category = forms.ChoiceField(label=_("Category"), choices=TicketCategory.choices)
    priority = forms.ChoiceField(label=_("Priority"), choices=TicketPriority.choices, initial=TicketPriority.NORMAL)
    subject = forms.CharField(label=_("Subject"), max_length=rules.SUBJECT_MAX_LENGTH)
    text = forms.CharField(
        label=_("What the subscriber says"), max_length=rules.TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )
    address = forms.CharField(
        label=_("Address to connect"),
        required=False,
        max_length=rules.ADDRESS_MAX_LENGTH,
        help_text=_("For a connection request."),
    )
