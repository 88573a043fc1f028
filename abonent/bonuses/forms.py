"""Console forms of bonuses: the rules, points spent for a subscriber, the referrer."""

from __future__ import annotations

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm, MoneyDecimalField

from .models import TenureUnit


class RulesForm(ConsoleForm):
    on_time_enabled = forms.BooleanField(label=_("Points for paying on time"), required=False)
    on_time_points = MoneyDecimalField(label=_("Points per payment"), min_value=0)
    on_time_percent = forms.DecimalField(
        label=_("Percent of the payment"), min_value=0, max_value=100, decimal_places=2
    )
    tenure_enabled = forms.BooleanField(label=_("Points for tenure"), required=False)
    tenure_unit = forms.ChoiceField(label=_("Every"), choices=TenureUnit.choices)
    tenure_points = MoneyDecimalField(label=_("Points per anniversary"), min_value=0)
    referral_enabled = forms.BooleanField(label=_("Points for referrals"), required=False)
    referral_percent = forms.DecimalField(
        label=_("Percent of the referred subscriber's payments"), min_value=0, max_value=100, decimal_places=2
    )
    referral_months = forms.IntegerField(label=_("For months"), min_value=1, max_value=120)
    expiry_months = forms.IntegerField(label=_("Points expire after months (0: never)"), min_value=0, max_value=120)


class SpendForm(ConsoleForm):
    points = MoneyDecimalField(label=_("Points to spend"))
    key = forms.CharField(widget=forms.HiddenInput, max_length=64, initial=lambda: uuid.uuid4().hex)


class ReferrerForm(ConsoleForm):
    referrer = forms.CharField(label=_("Referred by (code or account number)"), max_length=20)
