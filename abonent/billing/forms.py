"""Forms of the billing panels on the subscriber card. They parse and display; the billing actions decide
what is allowed (a plan not offered, a freeze over the quota, a zero adjustment) and the forms show why not.

Several forms share a page (one set per subscription), so each is built with ``console_form`` and a key that
prefixes its element ids; field names stay plain, as the API and the actions call them.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.catalog.forms import money_field
from abonent.catalog.models import Plan
from abonent.catalog.selectors import NoPriceError
from abonent.core.forms import ConsoleForm

from .models import Subscription, SubscriptionStatus
from .selectors import PlanChangePreview, plans_offered, preview_plan_change


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


class PlanChangeForm(ConsoleForm):
    """Choose a plan (the preview), then confirm it with an optional reason.

    The list shows the plans offered to the subscription, but any plan parses: ``do_change_plan`` is what
    refuses a plan that is not offered, with its own code (``plan_not_offered``).
    """

    plan = forms.ModelChoiceField(label=_("New plan"), queryset=Plan.objects.all())
    force = forms.BooleanField(label=_("A downgrade takes effect now, not at the next period"), required=False)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)

    def __init__(self, *args, offered=None, **kwargs):
        super().__init__(*args, **kwargs)
        if offered is not None:
            self.fields["plan"].choices = [("", "---------"), *((p.pk, p.name) for p in offered)]


class FreezeForm(ConsoleForm):
    days = forms.IntegerField(label=_("Days"), min_value=1, max_value=366)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class UnfreezeForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class TerminateForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=500)


def checked_preview(
    subscription: Subscription, plan: Plan, *, force: bool, channel: str = "staff"
) -> PlanChangePreview:
    """``preview_plan_change`` refusing, with the codes ``do_change_plan`` uses, a change it would refuse:
    a preview must never show amounts for a change that cannot be confirmed."""
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Only an active subscription can change its plan."), code="subscription_not_active")
    if plan.pk == subscription.plan_id:
        raise ValidationError(
            {"plan": ValidationError(_("The subscription is already on this plan."), code="same_plan")}
        )
    if not plans_offered(subscription, channel=channel).filter(pk=plan.pk).exists():
        raise ValidationError(
            {"plan": ValidationError(_("This plan is not offered to this subscriber."), code="plan_not_offered")}
        )
    try:
        return preview_plan_change(subscription, plan, force=force)
    except NoPriceError as exc:
        raise ValidationError(
            {"plan": ValidationError(_("The plan has no price on this date."), code="plan_without_price")}
        ) from exc
