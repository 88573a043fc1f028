"""Console forms of the helpdesk: the list's filters, a reply, a status change, a ticket opened from the card."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm

from . import rules
from .models import TicketCategory, TicketPriority, TicketSource, TicketStatus
from .selectors import ALL, OPEN


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
