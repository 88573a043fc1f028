"""The console's prepaid cards: series with counts by status, a series' cards, generating, selling, voiding, the
printable sheet, dealers; and the card panel's "activate a card for the subscriber"."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.deadlines import is_deadline
from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, has_perm, require_perm, scope_to_branches
from abonent.subscribers.panels import render_panel
from abonent.subscribers.selectors import get_subscriber

from . import actions, selectors, sheet
from .forms import ActivateForm, DealerForm, SaleForm, SeriesForm, VoidForm
from .models import Dealer, VoucherSeries
from .panels import PANEL
from .throttle import TooManyAttempts


@require_perm(Perm.VOUCHER_VIEW)
def series_list(request):
    can_manage = has_perm(request.user, Perm.VOUCHER_MANAGE)
    return render(
        request,
        "vouchers/series_list.html",
        {
            "series_list": selectors.series_list(request.user),
            "dealers": Dealer.objects.order_by("name"),
            "can_manage": can_manage,
            "dealer_form": DealerForm(auto_id="dealer-%s") if can_manage else None,
        },
    )


@require_perm(Perm.VOUCHER_MANAGE)
def series_new(request):
    form = SeriesForm(request.POST or None)
    form.fields["branch"].queryset = scope_to_branches(form.fields["branch"].queryset, request.user, "pk")
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                series = actions.do_create_series(acting_user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                apply_action_errors(form, exc)
            else:
                messages.success(request, _("Series created: %(count)s cards.") % {"count": series.count})
                return redirect("vouchers:series", pk=series.pk)
    return render(request, "vouchers/series_new.html", {"form": form}, status=status)


def _series_page(request, series, *, sale_form=None, void_form=None, status=200):
    can_manage = has_perm(request.user, Perm.VOUCHER_MANAGE)
    return render(
        request,
        "vouchers/series.html",
        {
            "series": series,
            "counts": selectors.counts_of(series),
            "cards": selectors.cards_of(series, request.user),
            "can_manage": can_manage,
            "sale_form": (sale_form or SaleForm(auto_id="sale-%s")) if can_manage else None,
            "void_form": (void_form or VoidForm(auto_id="void-%s")) if can_manage else None,
        },
        status=status,
    )


def _series(request, pk: int) -> VoucherSeries:
    """The series, 403 when it is a branch's the user is not limited to (its Wi-Fi subscribers, its codes)."""
    series = get_object_or_404(VoucherSeries.objects.select_related("plan"), pk=pk)
    actions.check_series_branch(request.user, series)
    return series


@require_perm(Perm.VOUCHER_VIEW)
def series_detail(request, pk: int):
    return _series_page(request, _series(request, pk))


@require_POST
@require_perm(Perm.VOUCHER_MANAGE)
def series_sell(request, pk: int):
    series = _series(request, pk)
    form = SaleForm(request.POST, auto_id="sale-%s")
    if form.is_valid():
        try:
            sale = actions.do_sell_vouchers(series, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(
                request, _("%(count)s cards sold to %(dealer)s.") % {"count": sale.count, "dealer": sale.dealer}
            )
            return redirect("vouchers:series", pk=series.pk)
    return _series_page(request, series, sale_form=form, status=422)


@require_POST
@require_perm(Perm.VOUCHER_MANAGE)
def series_void(request, pk: int):
    series = _series(request, pk)
    form = VoidForm(request.POST, auto_id="void-%s")
    if form.is_valid():
        try:
            count = actions.do_void_vouchers(series, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("%(count)s cards void.") % {"count": count})
            return redirect("vouchers:series", pk=series.pk)
    return _series_page(request, series, void_form=form, status=422)


@require_perm(Perm.VOUCHER_MANAGE)
def series_sheet(request, pk: int):
    series = _series(request, pk)
    pdf = sheet.render_sheet(series, acting_user=request.user, base_url=request.build_absolute_uri("/"))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="cards-{series.pk}.pdf"'
    response["Cache-Control"] = "no-store"  # the codes in clear
    return response


@require_POST
@require_perm(Perm.VOUCHER_MANAGE)
def dealer_new(request):
    form = DealerForm(request.POST, auto_id="dealer-%s")
    if form.is_valid():
        try:
            actions.do_create_dealer(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
    if form.errors:
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
    return redirect("vouchers:list")


@require_POST
@require_perm(Perm.VOUCHER_VIEW)
def activate_for_subscriber(request, pk: int):
    """The card panel: the operator types the code the subscriber reads out."""
    subscriber = get_subscriber(request.user, pk)
    form = ActivateForm(request.POST, auto_id="voucher-%s")
    status = 422
    if form.is_valid():
        try:
            result = actions.activate(
                subscriber, code=form.cleaned_data["code"], acting_user=request.user, client_ip=None
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        except TooManyAttempts as exc:
            form.add_error("code", _("Too many wrong codes: try again in %(n)s min.") % {"n": exc.minutes})
        except OperationalError as exc:
            # The card's or the account's row held past the lock deadline (an activation in flight, a void of its
            # range): nothing was written; as portal/views/cards.py does.
            if not is_deadline(exc):
                raise
            form.add_error(
                "code", _("The card or the account is busy with another operation; nothing was done. Try again.")
            )
            status = 503
        else:
            messages.success(request, _("Card %(serial)s activated.") % {"serial": result.voucher.serial})
            form, status = None, 200
    if not request.htmx:
        if form is not None:
            messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-vouchers")
    overrides = {"form": form} if form is not None else {}
    return HttpResponse(render_panel(request, subscriber, PANEL, **overrides), status=status)


urlpatterns = [
    path("", series_list, name="list"),
    path("new/", series_new, name="series_new"),
    path("<int:pk>/", series_detail, name="series"),
    path("<int:pk>/sell/", series_sell, name="sell"),
    path("<int:pk>/void/", series_void, name="void"),
    path("<int:pk>/sheet.pdf", series_sheet, name="sheet"),
    path("dealers/new/", dealer_new, name="dealer_new"),
    path("activate/<int:pk>/", activate_for_subscriber, name="activate"),
]
