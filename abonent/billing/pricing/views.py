"""The console's pricing page (``/staff/pricing/``): group prices, promotions and bundles, each with its form.
Thin: parse, call the pricing action, render the page again (422 with the form's errors when it refuses)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, has_perm, require_perm

from . import actions, selectors
from .forms import BundleForm, EndPriceForm, GroupPriceForm, PromotionForm
from .models import PriceOverride, Promotion

FORMS = {"group-price": GroupPriceForm, "promotion": PromotionForm, "bundle": BundleForm}


def _page(request, bound: dict | None = None, status: int = 200):
    can_manage = has_perm(request.user, Perm.PRICING_MANAGE)
    forms = {key: (bound or {}).get(key) or form_class(auto_id=f"{key}-%s") for key, form_class in FORMS.items()}
    context = {
        "can_manage": can_manage,
        "group_prices": selectors.group_overrides().order_by("group__name", "plan__name", "-valid_from"),
        "promotions": selectors.promotions(),
        "bundles": selectors.bundles(),
        "group_price_form": forms["group-price"] if can_manage else None,
        "promotion_form": forms["promotion"] if can_manage else None,
        "bundle_form": forms["bundle"] if can_manage else None,
        "end_form": EndPriceForm(auto_id="end-%s"),
    }
    return render(request, "billing/pricing/page.html", context, status=status)


@require_perm(Perm.BILLING_VIEW)
def page(request):
    return _page(request)


def _submit(request, key: str, do):
    form = FORMS[key](request.POST, auto_id=f"{key}-%s")
    if form.is_valid():
        try:
            messages.success(request, do(form.cleaned_data))
            return redirect("pricing:page")
        except ValidationError as exc:
            apply_action_errors(form, exc)
    return _page(request, {key: form}, status=422)


@require_POST
@require_perm(Perm.PRICING_MANAGE)
def add_group_price(request):
    def do(data):
        actions.do_set_price_override(
            group=data["group"],
            plan=data["plan"],
            monthly_fee=data["monthly_fee"],
            daily_fee=data["daily_fee"],
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            reason=data["reason"],
            acting_user=request.user,
        )
        return _("Group price added.")

    return _submit(request, "group-price", do)


@require_POST
@require_perm(Perm.PRICING_MANAGE)
def end_group_price(request, override_id: int):
    override = get_object_or_404(PriceOverride, pk=override_id, group__isnull=False)
    form = EndPriceForm(request.POST, auto_id="end-%s")
    if form.is_valid():
        try:
            actions.do_end_price_override(
                override,
                valid_until=form.cleaned_data["valid_until"],
                acting_user=request.user,
                reason=form.cleaned_data["reason"],
            )
            messages.success(request, _("Group price ended."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, _("Give the last day."))
    return redirect("pricing:page")


@require_POST
@require_perm(Perm.PRICING_MANAGE)
def add_promotion(request):
    def do(data):
        actions.do_create_promotion(
            name=data["name"],
            kind=data["kind"],
            value=data["value"],
            stacking=data["stacking"],
            plans=data["plans"],
            groups=data["groups"],
            bundle=data["bundle"],
            first_months=data["first_months"],
            starts_on=data["starts_on"],
            ends_on=data["ends_on"],
            acting_user=request.user,
        )
        return _("Promotion started.")

    return _submit(request, "promotion", do)


@require_POST
@require_perm(Perm.PRICING_MANAGE)
def end_promotion(request, promotion_id: int):
    actions.do_end_promotion(get_object_or_404(Promotion, pk=promotion_id), acting_user=request.user)
    messages.success(request, _("Promotion stopped."))
    return redirect("pricing:page")


@require_POST
@require_perm(Perm.PRICING_MANAGE)
def add_bundle(request):
    def do(data):
        shares = [s.strip().replace(",", ".") for s in data["shares"].split(";") if s.strip()]
        # The plans in the order they were picked: the shares follow it.
        ordered = {str(p.pk): p for p in data["plans"]}
        plans = [ordered[pk] for pk in dict.fromkeys(request.POST.getlist("plans")) if pk in ordered]
        actions.do_create_bundle(
            name=data["name"],
            plans=plans,
            total=data["total"],
            shares=shares or None,
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            acting_user=request.user,
        )
        return _("Bundle created.")

    return _submit(request, "bundle", do)
