"""Forms of the payments console and the cash desk. They parse and display; the actions decide what is allowed.

Every form that moves money or changes a payment carries a hidden one-time ``token`` (``OneTimeForm``): the
action runs once per token, so a double click or a resubmitted page does nothing more.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm
from abonent.core.money import MoneyError, to_decimal
from abonent.staff.models import StaffUser

from ..actions import new_form_token
from ..models import PaymentMethod, PaymentStatus


class AmountField(forms.CharField):
    """An amount of money as a cashier types it: digits, one decimal comma or point, spaces between thousands.

    Not the localized DecimalField: in English it reads "650,00" as 65 000 (the comma taken for a thousands
    separator), and it takes "1e3". Here a comma is always the decimal mark, and anything else is refused.
    """

    default_error_messages = {
        "invalid": _("Type an amount like 650 or 650,50."),
        "places": _("At most two digits after the decimal mark."),
        "positive": _("The amount must be greater than zero."),
    }

    def __init__(self, *args, positive: bool = True, **kwargs):
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "maxlength": 20})
        )
        super().__init__(*args, **kwargs)
        self.positive = positive

    def prepare_value(self, value):
        return f"{value:.2f}" if isinstance(value, Decimal) else value

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        text = text.replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
        if len(text) > 20 or text.count(",") + text.count(".") > 1:
            raise forms.ValidationError(self.error_messages["invalid"], code="amount_invalid")
        try:
            amount = to_decimal(text)
        except MoneyError:
            raise forms.ValidationError(self.error_messages["invalid"], code="amount_invalid") from None
        if amount.as_tuple().exponent < -2:
            raise forms.ValidationError(self.error_messages["places"], code="amount_invalid")
        if self.positive and amount <= 0:
            raise forms.ValidationError(self.error_messages["positive"], code="amount_not_positive")
        return amount


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
    amount_min = AmountField(label=_("Amount from"), required=False, positive=False)
    amount_max = AmountField(label=_("Amount to"), required=False, positive=False)
    q = forms.CharField(
        label=_("Account, payer or payment id"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )

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
    amount = AmountField(label=_("Amount"))
    memo = forms.CharField(label=_("Comment"), max_length=500, required=False)


class RefundForm(OneTimeForm):
    amount = AmountField(label=_("Amount"))
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
