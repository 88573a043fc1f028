"""The Pay section's forms: the payment, autopay settings, the statement's dates. Full-size controls (a phone's
thumb), every field labelled; the actions check everything again."""

from __future__ import annotations

import re
import secrets

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.core.money import format_money
from abonent.payments.forms.console import AmountField
from abonent.payments.models import AutopayAmount, AutopayMode, SavedMethod

from ..pay_data import check_period, online_payment_max

METHODS = [("bank_card", _("Bank card")), ("sbp", _("SBP (Faster Payments System)"))]
_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_key() -> str:
    """A one-time key rendered with the payment form: submitting the same form twice is one payment."""
    return secrets.token_urlsafe(24)


class PortalForm(forms.Form):
    """Bootstrap classes on the widgets, and ``is-invalid`` on the fields with errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.HiddenInput):
                continue
            css = (
                "form-check-input"
                if isinstance(widget, forms.CheckboxInput | forms.RadioSelect)
                else "form-select"
                if isinstance(widget, forms.Select)
                else "form-control"
            )
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
                widget.attrs["aria-invalid"] = "true"
        return valid


class PayForm(PortalForm):
    amount = AmountField(label=_("Amount, ₽"))
    method_type = forms.ChoiceField(
        label=_("How to pay"), choices=METHODS, initial="bank_card", widget=forms.RadioSelect
    )
    save_method = forms.BooleanField(label=_("Save this card for autopay"), required=False)
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].widget.attrs.update({"autocomplete": "off", "enterkeyhint": "done"})
        self.fields["save_method"].widget.attrs["aria-describedby"] = "pay-save-consent"
        if not self.is_bound:
            self.initial.setdefault("key", new_key())

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        limit = online_payment_max()
        if amount is not None and amount > limit:
            raise forms.ValidationError(
                _("An online payment is at most %(limit)s.") % {"limit": format_money(limit)}, code="amount_too_large"
            )
        return amount

    def clean_key(self):
        key = self.cleaned_data["key"]
        if not _KEY.fullmatch(key):
            raise forms.ValidationError(_("This form is out of date: check the amount and send it again."))
        return key

    def clean(self):
        data = super().clean()
        if data.get("save_method") and data.get("method_type") == "sbp":
            self.add_error("save_method", _("Only a bank card can be saved for autopay here."))
        return data


class AutopayForm(PortalForm):
    method = forms.ModelChoiceField(label=_("Card or account"), queryset=SavedMethod.objects.none(), empty_label=None)
    mode = forms.ChoiceField(label=_("When to pay"), choices=AutopayMode.choices, widget=forms.RadioSelect)
    debit_day = forms.IntegerField(
        label=_("Day of the month"),
        min_value=1,
        max_value=31,
        required=False,
        help_text=_("For “on a day of the month”. A day past the month's end means its last day."),
    )
    amount_mode = forms.ChoiceField(label=_("How much"), choices=AutopayAmount.choices, widget=forms.RadioSelect)
    fixed_amount = AmountField(label=_("Fixed amount, ₽"), required=False)
    max_amount = AmountField(
        label=_("At most at once, ₽"), required=False, help_text=_("Leave empty for the usual limit.")
    )
    consent = forms.BooleanField(
        required=True, error_messages={"required": _("Autopay is turned on only with your consent.")}
    )

    def __init__(self, *args, methods, consent_text: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].queryset = methods
        self.fields["consent"].label = consent_text
        self.fields["debit_day"].widget.attrs["inputmode"] = "numeric"


DATE_FORMATS = ["%Y-%m-%d", "%d.%m.%Y"]
DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class StatementForm(PortalForm):
    date_from = forms.DateField(label=_("From"), input_formats=DATE_FORMATS, widget=DATE_WIDGET)
    date_to = forms.DateField(label=_("To"), input_formats=DATE_FORMATS, widget=DATE_WIDGET)

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            try:
                check_period(start, end)
            except ValidationError as exc:
                raise forms.ValidationError(exc.error_dict["to"]) from None
        return data
