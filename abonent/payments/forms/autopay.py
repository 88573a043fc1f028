"""The autopay form of the subscriber card. Built with ``billing.forms.console_form`` and a key, as the card's other
panels."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm

from ..models import AutopayAmount, AutopayMode, SavedMethod
from .console import AmountField


class AutopayForm(ConsoleForm):
    method = forms.ModelChoiceField(label=_("Payment method"), queryset=SavedMethod.objects.none())
    mode = forms.ChoiceField(label=_("When"), choices=AutopayMode.choices)
    debit_day = forms.IntegerField(
        label=_("Day of the month"), min_value=1, max_value=31, required=False, help_text=_("For a day of the month.")
    )
    amount_mode = forms.ChoiceField(label=_("Amount"), choices=AutopayAmount.choices)
    # Not catalog's money_field (a localized DecimalField: "650,00" read as 65 000 in English, "1e3" taken).
    fixed_amount = AmountField(label=_("Fixed amount"), required=False)
    min_amount = AmountField(
        label=_("At least at once"), required=False, help_text=_("Empty: keep the amount set before.")
    )
    max_amount = AmountField(
        label=_("At most at once"), required=False, help_text=_("Empty: the limit set for the whole system.")
    )

    def __init__(self, *args, methods=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].queryset = methods if methods is not None else SavedMethod.objects.none()


class UnlinkForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
