"""Forms of pricing: an individual price on the card, group prices, promotions and bundles on the pricing page.
They parse; the pricing actions decide (overlaps, a percentage over 100, shares not adding up)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.catalog.forms import money_field
from abonent.catalog.models import Plan
from abonent.core.forms import AsciiDecimalField, ConsoleForm
from abonent.subscribers.models import SubscriberGroup

from .models import Bundle, PromotionKind, Stacking


def _date(label, *, required=True, help_text=""):
    return forms.DateField(
        label=label,
        required=required,
        help_text=help_text,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class PriceOverrideForm(ConsoleForm):
    monthly_fee = money_field(_("Monthly fee"))
    daily_fee = money_field(_("Daily fee"), required=False, help_text=_("Only for plans priced by the day."))
    valid_from = _date(_("Valid from"))
    valid_until = _date(_("Valid until (last day)"), required=False)
    reason = forms.CharField(label=_("Reason"), max_length=500)


class GroupPriceForm(PriceOverrideForm):
    group = forms.ModelChoiceField(label=_("Group"), queryset=SubscriberGroup.objects.all())
    plan = forms.ModelChoiceField(label=_("Plan"), queryset=Plan.objects.filter(is_archived=False))
    field_order = ["group", "plan", "monthly_fee", "daily_fee", "valid_from", "valid_until", "reason"]


class EndPriceForm(ConsoleForm):
    valid_until = _date(_("Last day"))
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class PromotionForm(ConsoleForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Discount"), choices=PromotionKind.choices)
    value = AsciiDecimalField(label=_("Percent or amount"), max_digits=14, decimal_places=2, localize=True)
    stacking = forms.ChoiceField(label=_("Stacking"), choices=Stacking.choices)
    plans = forms.ModelMultipleChoiceField(label=_("Plans"), queryset=Plan.objects.all(), required=False)
    groups = forms.ModelMultipleChoiceField(
        label=_("Subscriber groups"), queryset=SubscriberGroup.objects.all(), required=False
    )
    bundle = forms.ModelChoiceField(label=_("Bundle"), queryset=Bundle.objects.all(), required=False)
    first_months = forms.IntegerField(label=_("First months of a subscription"), required=False, min_value=1)
    starts_on = _date(_("Periods starting from"), required=False)
    ends_on = _date(_("Periods starting until"), required=False)


class BundleForm(ConsoleForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    plans = forms.ModelMultipleChoiceField(label=_("Plans"), queryset=Plan.objects.filter(is_archived=False))
    total = money_field(_("Bundle price a month"))
    shares = forms.CharField(
        label=_("Shares"),
        required=False,
        help_text=_("One per plan in the list's order, separated by semicolons; empty: in proportion to list prices."),
    )
    valid_from = _date(_("Valid from"))
    valid_until = _date(_("Valid until (last day)"), required=False)
