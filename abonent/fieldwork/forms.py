"""Console forms of field work: device models, receiving, issuing, write-off, booking a job, checklists."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan
from abonent.core.forms import ConsoleForm
from abonent.core.models import Branch

from . import selectors
from .models import DeviceKind, DeviceModel, DeviceState, JobKind


class DeviceModelForm(ConsoleForm):
    vendor = forms.CharField(label=_("Vendor"), max_length=100)
    name = forms.CharField(label=_("Model"), max_length=100)
    kind = forms.ChoiceField(label=_("Type"), choices=DeviceKind.choices)


class ReceiveForm(ConsoleForm):
    device_model = forms.ModelChoiceField(label=_("Model"), queryset=DeviceModel.objects.all())
    serials = forms.CharField(
        label=_("Serial numbers"),
        help_text=_("One device a line: its serial number, optionally followed by its MAC address."),
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        max_length=200_000,
    )
    comment = forms.CharField(label=_("Comment (delivery note)"), max_length=255, required=False)


class DeviceFilterForm(ConsoleForm):
    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("Any")), *DeviceState.choices])
    model = forms.ModelChoiceField(label=_("Model"), required=False, queryset=DeviceModel.objects.all())
    q = forms.CharField(label=_("Serial or MAC"), required=False, max_length=100)


class IssueForm(ConsoleForm):
    installer = forms.ModelChoiceField(label=_("Installer"), queryset=selectors.installers())


class WriteOffForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=255)


class JobIssueForm(ConsoleForm):
    serial = forms.CharField(label=_("Serial number"), max_length=100)


class RescheduleForm(ConsoleForm):
    installer = forms.ModelChoiceField(label=_("Installer"), queryset=selectors.installers())
    day = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    starts_at = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    ends_at = forms.TimeField(label=_("To"), widget=forms.TimeInput(attrs={"type": "time"}))


class CancelForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=255)


class JobForm(ConsoleForm):
    """A job for a request (its number) or, without one, for a prospect (the person, address and plan)."""

    ticket = forms.IntegerField(label=_("Request number"), required=False, min_value=1, max_value=2**62)
    installer = forms.ModelChoiceField(label=_("Installer"), queryset=selectors.installers())
    day = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    starts_at = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    ends_at = forms.TimeField(label=_("To"), widget=forms.TimeInput(attrs={"type": "time"}))
    note = forms.CharField(
        label=_("Note for the installer"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    branch = forms.ModelChoiceField(
        label=_("Branch (prospect)"), required=False, queryset=Branch.objects.filter(is_active=True)
    )
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=100)
    first_name = forms.CharField(label=_("First name"), required=False, max_length=100)
    middle_name = forms.CharField(label=_("Patronymic"), required=False, max_length=100)
    phone = forms.CharField(label=_("Phone"), required=False, max_length=30)
    city = forms.CharField(label=_("City"), required=False, max_length=100)
    street = forms.CharField(label=_("Street"), required=False, max_length=150)
    house = forms.CharField(label=_("House"), required=False, max_length=20)
    apartment = forms.CharField(label=_("Apartment"), required=False, max_length=20)
    plan = forms.ModelChoiceField(
        label=_("Plan"), required=False, queryset=Plan.objects.filter(is_archived=False).order_by("name")
    )

    def clean(self):
        data = super().clean()
        if not data.get("ticket") and not data.get("branch"):
            self.add_error("branch", _("Give a request number, or the branch and details of a prospect."))
        return data


class ChecklistForm(ConsoleForm):
    kind = forms.ChoiceField(label=_("Kind of job"), choices=JobKind.choices)
    text = forms.CharField(
        label=_("Items, one a line"), required=False, max_length=20_000, widget=forms.Textarea(attrs={"rows": 8})
    )
