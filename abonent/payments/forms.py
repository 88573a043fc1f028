"""Forms of the payments console and the cash desk. They parse and display; the actions decide what is allowed.

Every form that moves money or changes a payment carries a hidden one-time ``token`` (``OneTimeForm``): the
action runs once per token, so a double click or a resubmitted page does nothing more.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.catalog.forms import money_field
from abonent.core.forms import ConsoleForm
from abonent.staff.models import StaffUser

from .actions import new_form_token
from .models import PaymentMethod, PaymentStatus


class OneTimeForm(ConsoleForm):
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("token", new_form_token())


class JournalFilterForm(ConsoleForm):
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    channel = forms.ChoiceField(label=_("Channel"), required=False)
    method = forms.ChoiceField(
        label=_("Method"), required=False, choices=[("", _("Any method")), *PaymentMethod.choices]
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *PaymentStatus.choices]
    )
    cashier = forms.ModelChoiceField(
        label=_("Taken by"), required=False, queryset=StaffUser.objects.none(), empty_label=_("Anyone")
    )
    amount_min = money_field(_("Amount from"), required=False)
    amount_max = money_field(_("Amount to"), required=False)
    q = forms.CharField(
        label=_("Account, payer or payment id"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000, widget=forms.HiddenInput)

    def __init__(self, *args, channels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", _("Any channel")), *((c, c) for c in channels)]
        self.fields["cashier"].queryset = StaffUser.objects.filter(is_active=True).order_by("username")

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", forms.ValidationError(_("The period ends before it starts."), code="period"))
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", forms.ValidationError(_("The range ends below its start."), code="range"))
        return data


class AccountLookupForm(ConsoleForm):
    account = forms.CharField(
        label=_("Account number"),
        max_length=20,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off", "inputmode": "numeric"}),
    )

    def clean_account(self):
        return self.cleaned_data["account"].strip()


class TakePaymentForm(OneTimeForm):
    amount = money_field(_("Amount"))
    memo = forms.CharField(label=_("Comment"), max_length=500, required=False)


class RefundForm(OneTimeForm):
    amount = money_field(_("Amount"))
    reason = forms.CharField(label=_("Reason"), max_length=500)


class ReasonForm(OneTimeForm):
    reason = forms.CharField(label=_("Reason"), max_length=500)


class AssignForm(OneTimeForm):
    account = forms.CharField(label=_("Account number"), max_length=20)
    reason = forms.CharField(label=_("Comment"), max_length=500, required=False)


class ResolveForm(OneTimeForm):
    resolution = forms.CharField(label=_("How it was settled"), max_length=500)


class CloseDayForm(OneTimeForm):
    pass
