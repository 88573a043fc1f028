"""Forms of the billing panels on the subscriber card. They parse and display; the billing actions decide
what is allowed (a plan not offered, a freeze over the quota, a zero adjustment) and the forms show why not.

Several forms share a page (one set per subscription), so each is built with ``console_form`` and a key that
prefixes its element ids; field names stay plain, as the API and the actions call them.
"""

from __future__ import annotations

from django import forms
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from abonent.catalog.forms import kbps_to_mbps, money_field, turbo_label
from abonent.catalog.models import Plan, TimePackage, Turbo
from abonent.core.forms import ConsoleForm


def console_form(form_class: type[forms.Form], key: str, data=None, **kwargs) -> forms.Form:
    return form_class(data, auto_id=f"{key}-%s", **kwargs)


class AdjustmentForm(ConsoleForm):
    amount = money_field(_("Amount"), help_text=_("Positive adds to the balance, negative takes away."))
    reason = forms.CharField(label=_("Reason"), max_length=500)


class CreditLimitForm(ConsoleForm):
    amount = money_field(
        _("Credit limit"), help_text=_("How far below zero the balance may go before access is restricted.")
    )
    reason = forms.CharField(label=_("Reason"), max_length=500)


class PromisedPaymentForm(ConsoleForm):
    amount = money_field(_("Amount"), required=False, help_text=_("Empty: the most the plan allows."))


class ActivateForm(ConsoleForm):
    # Every plan not archived: the action refuses what cannot be activated and says why.
    plan = forms.ModelChoiceField(label=_("Plan"), queryset=Plan.objects.filter(is_archived=False).order_by("name"))
    reason = forms.CharField(label=_("Comment"), max_length=500, required=False)


def plan_choice_label(choice) -> str:
    """A plan offered for a change as the list reads: name, speed and the monthly fee this subscriber would pay."""
    from abonent.core.money import format_money

    plan = choice.plan
    values = {"name": plan.name, "fee": format_money(choice.monthly_fee)}
    if not plan.download_kbps:
        return _("%(name)s: %(fee)s a month") % values
    values["down"] = number_format(kbps_to_mbps(plan.download_kbps), force_grouping=True)
    values["up"] = number_format(kbps_to_mbps(plan.upload_kbps or plan.download_kbps), force_grouping=True)
    return _("%(name)s: %(down)s/%(up)s Mbit/s, %(fee)s a month") % values


class PlanSelect(forms.Select):
    """A plan list whose options say what a change to them does (``data-direction``), for the card to show the
    downgrade checkbox only when a downgrade is chosen (``subscribers/card.js``)."""

    directions: dict[str, str]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.directions = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        direction = self.directions.get(str(value))
        if direction:
            option["attrs"]["data-direction"] = direction
        return option


class PlanChangeForm(ConsoleForm):
    """Choose a plan (the preview), then confirm it with an optional reason.

    The list shows the plans offered to the subscription grouped by what a change does (``offers.plan_choices``:
    an upgrade and a change at the same price take effect now, a downgrade at the next period), each with its
    speed and the fee this subscriber would pay. Any plan parses: ``do_change_plan`` is what refuses a plan that
    is not offered, with its own code (``plan_not_offered``). "Now, not at the next period" only means something
    for a downgrade: for any other choice the form drops it, and the card shows it only for a downgrade.
    """

    plan = forms.ModelChoiceField(label=_("New plan"), queryset=Plan.objects.all(), widget=PlanSelect)
    force = forms.BooleanField(label=_("A downgrade takes effect now, not at the next period"), required=False)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)

    def __init__(self, *args, choices=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.directions: dict[str, str] = {}
        if choices is not None:
            from .offers import Direction

            self.directions = {str(c.plan.pk): c.direction for c in choices}
            groups = [
                (str(direction.label), [(c.plan.pk, plan_choice_label(c)) for c in choices if c.direction == direction])
                for direction in Direction
            ]
            self.fields["plan"].choices = [("", _("Choose a plan")), *(g for g in groups if g[1])]
            self.fields["plan"].widget.directions = self.directions
            self.fields["plan"].widget.attrs["data-plan-directions"] = ""

    @property
    def chosen_direction(self) -> str:
        """What a change to the plan chosen in the bound form does ("" when none is chosen or it is not offered)."""
        return self.directions.get(str(self["plan"].value() or ""), "") if self.is_bound else ""

    def clean(self):
        from .offers import Direction

        data = super().clean()
        plan = data.get("plan")
        if data.get("force") and (plan is None or self.directions.get(str(plan.pk)) != Direction.DOWNGRADE):
            data["force"] = False
        return data


class FreezeForm(ConsoleForm):
    days = forms.IntegerField(label=_("Days"), min_value=1, max_value=366)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class UnfreezeForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class TerminateForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=500)


class TurboForm(ConsoleForm):
    """Buy a turbo for the subscription. Like the plan change, the list shows the options offered and any
    option parses: ``do_activate_turbo`` refuses one the plan does not offer (``turbo_not_offered``)."""

    turbo = forms.ModelChoiceField(label=_("Turbo option"), queryset=Turbo.objects.all())
    reason = forms.CharField(label=_("Comment"), max_length=500, required=False)

    def __init__(self, *args, offered=None, **kwargs):
        super().__init__(*args, **kwargs)
        if offered is not None:
            self.fields["turbo"].choices = [("", "---------"), *((t.pk, turbo_label(t)) for t in offered)]


def time_package_label(package: TimePackage) -> str:
    from abonent.core.money import format_money

    minutes = package.seconds // 60
    if minutes % 60 == 0:
        amount = _("%(hours)s h") % {"hours": minutes // 60}
    else:
        amount = _("%(minutes)s min") % {"minutes": minutes}
    return _("%(name)s: %(amount)s within %(days)s days, %(price)s") % {
        "name": package.name,
        "amount": amount,
        "days": package.validity_days,
        "price": format_money(package.price),
    }


class TimePackageForm(ConsoleForm):
    """Buy a time package for a subscription on a time plan; ``do_buy_time_package`` refuses one not offered."""

    package = forms.ModelChoiceField(label=_("Time package"), queryset=TimePackage.objects.all())
    reason = forms.CharField(label=_("Comment"), max_length=500, required=False)

    def __init__(self, *args, offered=None, **kwargs):
        super().__init__(*args, **kwargs)
        if offered is not None:
            self.fields["package"].choices = [("", "---------"), *((p.pk, time_package_label(p)) for p in offered)]


class TurboEndForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class ChargeReversalForm(ConsoleForm):
    """Giving a charge back: the whole of it, or the days from ``first_day`` to ``last_day`` of a fee."""

    reason = forms.CharField(label=_("Reason"), max_length=500)
    first_day = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    last_day = forms.DateField(
        label=_("To (last day)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Empty: every day served so far. Days to come are not given back: freeze the subscription."),
    )
