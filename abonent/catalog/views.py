"""Staff console pages for the catalog: services, plans, a plan's price versions, turbo options. Thin: parse,
check access, call an action or selector, render."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.core import clock
from abonent.core.forms import apply_action_errors
from abonent.core.listing import MONEY_FORMAT, Column, Sorting, export_response, keyset_page, query_without
from abonent.staff.permissions import Perm, has_perm, require_perm

from . import actions, selectors
from .forms import PlanCreateForm, PlanFilterForm, PlanPriceForm, TurboForm, bytes_to_gb, kbps_to_mbps
from .models import Plan, PlanPrice, Service, Turbo


@dataclass(frozen=True)
class PlanRow:
    """A plan as the console shows it: speeds in Mbit/s, traffic in GB, the price in force today."""

    plan: Plan
    price: PlanPrice | None
    download_mbps: Decimal
    upload_mbps: Decimal
    included_gb: Decimal | None

    @classmethod
    def of(cls, plan: Plan, price: PlanPrice | None) -> PlanRow:
        return cls(
            plan,
            price,
            kbps_to_mbps(plan.download_kbps),
            kbps_to_mbps(plan.upload_kbps),
            bytes_to_gb(plan.included_bytes),
        )


@dataclass(frozen=True)
class TurboRow:
    """A turbo option as the console shows it: speeds in Mbit/s."""

    turbo: Turbo
    download_mbps: Decimal
    upload_mbps: Decimal

    @classmethod
    def of(cls, turbo: Turbo) -> TurboRow:
        return cls(turbo, kbps_to_mbps(turbo.download_kbps), kbps_to_mbps(turbo.upload_kbps))


# Reads the catalog's selectors do not offer yet (a page of plans with archived ones, today's price of many plans
# at once); two queries a page whatever the number of plans.

PLAN_PAGE = 50
# The list's sorts (core.listing.Sorting): offered before archived, by service and name; by name; by code.
PLAN_SORTING = Sorting(
    {
        "service": ("is_archived", "service__name", "name", "id"),
        "name": ("name", "id"),
        "code": ("code", "id"),
    },
    default="service",
)


def _with_price_today(plans):
    return plans.select_related("service").prefetch_related(
        Prefetch(
            "prices",
            queryset=PlanPrice.objects.filter(valid_from__lte=clock.today()).order_by("-valid_from"),
            to_attr="prices_to_date",
        )
    )


def _row(plan: Plan) -> PlanRow:
    return PlanRow.of(plan, plan.prices_to_date[0] if plan.prices_to_date else None)


def _plans(request):
    form = PlanFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    plans = Plan.objects.all()
    if text := (data.get("q") or "").strip():
        plans = plans.filter(Q(name__icontains=text) | Q(code__icontains=text))
    if data.get("service"):
        plans = plans.filter(service=data["service"])
    state = data.get("state") or ""
    if state == "archived":
        plans = plans.filter(is_archived=True)
    elif state == "offered":
        plans = plans.filter(is_archived=False, is_public=True)
    elif state == "not_offered":
        plans = plans.filter(is_archived=False, is_public=False)
    sort, order = PLAN_SORTING.choose(request.GET.get("sort"))
    return form, plans, sort, order


def _price_today(plan: Plan) -> PlanPrice | None:
    try:
        return selectors.price_on(plan, clock.today())
    except selectors.NoPriceError:
        return None


@require_perm(Perm.BILLING_VIEW)
def plan_list(request):
    form, plans, sort, order = _plans(request)
    page = keyset_page(_with_price_today(plans), ordering=order, cursor=request.GET.get("cursor"), size=PLAN_PAGE)
    context = {
        "form": form,
        "page": page,
        "rows": [_row(plan) for plan in page],
        "sort": sort,
        "query_string": query_without(request.GET, "cursor", "format"),
        "sort_query": query_without(request.GET, "cursor", "format", "sort"),
        "can_manage": has_perm(request.user, Perm.CATALOG_MANAGE),
    }
    return render(request, "catalog/plan_list.html", context)


PLAN_COLUMNS = [
    Column(gettext_lazy("Code"), lambda r: r.plan.code),
    Column(gettext_lazy("Plan"), lambda r: r.plan.name),
    Column(gettext_lazy("Service"), lambda r: r.plan.service.name),
    Column(gettext_lazy("Charge mode"), lambda r: r.plan.get_charge_mode_display()),
    Column(gettext_lazy("Download, Mbit/s"), lambda r: r.download_mbps),
    Column(gettext_lazy("Upload, Mbit/s"), lambda r: r.upload_mbps),
    Column(gettext_lazy("Price today"), lambda r: r.price.monthly_fee if r.price else None, MONEY_FORMAT),
    Column(gettext_lazy("Daily fee"), lambda r: r.price.daily_fee if r.price else None, MONEY_FORMAT),
    Column(gettext_lazy("Included traffic, GB"), lambda r: r.included_gb),
    Column(gettext_lazy("Offered"), lambda r: r.plan.is_public and not r.plan.is_archived),
    Column(gettext_lazy("Archived"), lambda r: r.plan.is_archived),
]


@require_perm(Perm.BILLING_VIEW)
def plan_list_export(request):
    _form, plans, _sort, order = _plans(request)
    rows = (_row(plan) for plan in _with_price_today(plans).order_by(*order).iterator(chunk_size=500))
    return export_response(request.GET.get("format", ""), "plans", PLAN_COLUMNS, rows)


@require_perm(Perm.BILLING_VIEW)
def service_list(request):
    services = Service.objects.annotate(plan_count=Count("plans")).order_by("kind", "name")
    return render(request, "catalog/service_list.html", {"services": services})


def _plan(pk: int) -> Plan:
    return get_object_or_404(
        Plan.objects.select_related("service", "freeze_policy", "promised_payment_policy").prefetch_related(
            "switchable_to", Prefetch("turbos", queryset=Turbo.objects.order_by("-is_active", "price", "name"))
        ),
        pk=pk,
    )


def _prices_context(request, plan: Plan, form: PlanPriceForm | None = None, notice: str = "") -> dict:
    current = _price_today(plan)
    return {
        "plan": plan,
        "prices": selectors.price_history(plan),
        "current_price_id": current.pk if current else None,
        "today": clock.today(),
        "price_form": form or PlanPriceForm(),
        "can_manage": has_perm(request.user, Perm.CATALOG_MANAGE),
        "notice": notice,
    }


@require_perm(Perm.BILLING_VIEW)
def plan_detail(request, pk):
    plan = _plan(pk)
    context = _prices_context(request, plan)
    context["row"] = PlanRow.of(plan, _price_today(plan))
    for speed in (
        "burst_download_kbps",
        "burst_upload_kbps",
        "night_download_kbps",
        "night_upload_kbps",
        "fup_download_kbps",
        "fup_upload_kbps",
    ):
        context[speed.replace("_kbps", "_mbps")] = kbps_to_mbps(getattr(plan, speed))
    context["turbos"] = [TurboRow.of(turbo) for turbo in plan.turbos.all()]
    return render(request, "catalog/plan_detail.html", context)


@require_POST
@require_perm(Perm.CATALOG_MANAGE)
def price_add(request, pk):
    plan = _plan(pk)
    form = PlanPriceForm(request.POST)
    status, notice = 422, ""
    if form.is_valid():
        try:
            price = actions.do_add_plan_price(plan, acting_user=request.user, **form.price_values())
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            status, form = 200, None
            notice = _("The new price applies from %(date)s.") % {
                "date": date_format(price.valid_from, "SHORT_DATE_FORMAT")
            }
    if not request.htmx:
        if status == 200:
            messages.success(request, notice)
        else:
            messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect("catalog:plan", pk=plan.pk)
    html = render_to_string("catalog/_prices.html", _prices_context(request, plan, form, notice), request=request)
    return HttpResponse(html, status=status)


@require_perm(Perm.CATALOG_MANAGE)
def plan_create(request):
    form = PlanCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            plan = actions.do_create_plan(acting_user=request.user, **form.plan_values())
        except ValidationError as exc:
            apply_action_errors(form, exc, PlanCreateForm.FIELD_MAP)
        else:
            messages.success(request, _("Plan %(name)s created.") % {"name": plan.name})
            return redirect("catalog:plan", pk=plan.pk)
    return render(request, "catalog/plan_form.html", {"form": form}, status=422 if form.errors else 200)


# --- turbo options ------------------------------------------------------------------------------------------


@require_perm(Perm.BILLING_VIEW)
def turbo_list(request):
    return render(
        request,
        "catalog/turbo_list.html",
        {
            "rows": [TurboRow.of(turbo) for turbo in selectors.turbos_with_plans()],
            "can_manage": has_perm(request.user, Perm.CATALOG_MANAGE),
        },
    )


@require_perm(Perm.CATALOG_MANAGE)
def turbo_create(request):
    form = TurboForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            turbo = actions.do_create_turbo(acting_user=request.user, **form.turbo_values())
        except ValidationError as exc:
            apply_action_errors(form, exc, TurboForm.FIELD_MAP)
        else:
            messages.success(request, _("Turbo option %(name)s created.") % {"name": turbo.name})
            return redirect("catalog:turbos")
    return render(request, "catalog/turbo_form.html", {"form": form}, status=422 if form.errors else 200)


@require_perm(Perm.CATALOG_MANAGE)
def turbo_edit(request, pk):
    turbo = get_object_or_404(Turbo, pk=pk)
    form = TurboForm(request.POST or None, turbo=turbo)
    if request.method == "POST" and form.is_valid():
        values = form.turbo_values()
        try:
            turbo = actions.do_update_turbo(turbo, acting_user=request.user, plans=values.pop("plans"), **values)
        except ValidationError as exc:
            apply_action_errors(form, exc, TurboForm.FIELD_MAP)
        else:
            messages.success(request, _("Turbo option %(name)s saved.") % {"name": turbo.name})
            return redirect("catalog:turbos")
    return render(
        request, "catalog/turbo_form.html", {"form": form, "turbo": turbo}, status=422 if form.errors else 200
    )
