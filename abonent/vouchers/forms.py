"""Console forms of the prepaid cards: a series, a dealer, a sale, a void, a card activated for a subscriber."""

from __future__ import annotations

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import ChargeMode, Plan
from abonent.core.forms import ConsoleForm, MoneyDecimalField
from abonent.core.models import Branch

from .models import MAX_SERIES_COUNT, Dealer, SeriesKind


class SeriesForm(ConsoleForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=SeriesKind.choices)
    amount = MoneyDecimalField(label=_("Face value"))
    count = forms.IntegerField(label=_("Number of cards"), min_value=1, max_value=MAX_SERIES_COUNT)
    expires_on = forms.DateField(label=_("Valid until"), widget=forms.DateInput(attrs={"type": "date"}))
    plan = forms.ModelChoiceField(
        label=_("Wi-Fi plan"),
        required=False,
        queryset=Plan.objects.filter(charge_mode=ChargeMode.TIME, is_archived=False),
    )
    branch = forms.ModelChoiceField(label=_("Branch"), required=False, queryset=Branch.objects.filter(is_active=True))
    dealer = forms.ModelChoiceField(label=_("Dealer"), required=False, queryset=Dealer.objects.filter(is_active=True))


class DealerForm(ConsoleForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    contacts = forms.CharField(label=_("Contacts"), max_length=500, required=False)
    commission_percent = forms.DecimalField(
        label=_("Commission, %"), required=False, min_value=0, max_value=99.99, decimal_places=2
    )


class SaleForm(ConsoleForm):
    dealer = forms.ModelChoiceField(label=_("Dealer"), queryset=Dealer.objects.filter(is_active=True))
    first = forms.IntegerField(label=_("From card no."), min_value=1)
    last = forms.IntegerField(label=_("To card no."), min_value=1)
    # One per rendered form: a resubmitted form is the same sale.
    key = forms.CharField(widget=forms.HiddenInput, max_length=64, initial=lambda: uuid.uuid4().hex)


class VoidForm(ConsoleForm):
    first = forms.IntegerField(label=_("From card no."), min_value=1)
    last = forms.IntegerField(label=_("To card no."), min_value=1)
    reason = forms.CharField(label=_("Reason"), max_length=500)


class ActivateForm(ConsoleForm):
    code = forms.CharField(label=_("Card code"), max_length=40)
