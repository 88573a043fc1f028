"""The first-run wizard under ``/staff/setup/``: one page a step, walked in order, each saved as it is sent, so an
administrator who stops halfway comes back to where they were (``/staff/setup/`` resumes)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from abonent.core.company import company_details, company_profile, tax_settings
from abonent.core.forms import apply_action_errors
from abonent.network.models import Nas
from abonent.payments.models import Agent
from abonent.payments.selectors.gateway import gateway_overview
from abonent.staff.permissions import Perm, require_perm

from . import actions, selectors
from .forms import BranchForm, CompanyForm, NasForm, PlanForm, RegionForm, TaxesForm, new_secret, time_zone_names
from .models import Step

NEXT = dict(zip(selectors.STEPS, [*selectors.STEPS[1:], None], strict=True))


def _step_url(step: Step | None) -> str:
    return reverse("setup:done") if step is None else reverse(f"setup:{step.value}")


def _after(step: Step):
    return redirect(_step_url(NEXT[step]))


def _closed(step: Step, done: dict):
    """A redirect to where the wizard stands when ``step`` is not open yet, else ``None``."""
    if selectors.can_open(step, done):
        return None
    return redirect(_step_url(selectors.first_unfinished(done)))


def _render(request, step: Step | None, template: str, context: dict, *, done: dict, status: int = 200):
    states = selectors.step_states(step, done)
    context = {
        "steps": states,
        "steps_done_count": sum(1 for state in states if state.done),
        "step": step,
        "step_done": step is not None and step.value in done,
        "time_zones": time_zone_names() if step in (Step.REGION, Step.BRANCHES) else [],
        **context,
    }
    if status == 200 and any(getattr(form, "errors", None) for form in context.values() if hasattr(form, "is_bound")):
        status = 422
    return render(request, template, context, status=status)


@require_perm(Perm.SETUP_MANAGE)
def index(request):
    return redirect(_step_url(selectors.first_unfinished()))


@require_perm(Perm.SETUP_MANAGE)
def company(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.COMPANY, done):
        return closed
    form = CompanyForm(request.POST or None, initial=company_details().as_dict())
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_save_company_step(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
            form.mark_invalid()
        else:
            return _after(Step.COMPANY)
    return _render(request, Step.COMPANY, "setup/company.html", {"form": form}, done=done)


@require_perm(Perm.SETUP_MANAGE)
def taxes(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.TAXES, done):
        return closed
    current = tax_settings()
    form = TaxesForm(request.POST or None, initial={"tax_system": current.tax_system, "vat_mode": current.vat_mode})
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_save_taxes_step(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            return _after(Step.TAXES)
    return _render(request, Step.TAXES, "setup/taxes.html", {"form": form}, done=done)


@require_perm(Perm.SETUP_MANAGE)
def region(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.REGION, done):
        return closed
    profile = company_profile()
    initial = {
        "currency": (profile and profile.currency) or settings.ABONENT_CURRENCY,
        "time_zone": (profile and profile.time_zone) or settings.TIME_ZONE,
    }
    form = RegionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_save_region_step(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            if selectors.environment_lines(company_profile()):
                return redirect(_step_url(Step.REGION))  # stay: the page says which lines to change
            return _after(Step.REGION)
    context = {
        "form": form,
        "environment_lines": selectors.environment_lines(profile),
        "running": {"currency": settings.ABONENT_CURRENCY, "time_zone": settings.TIME_ZONE},
        "next_url": _step_url(NEXT[Step.REGION]),
    }
    return _render(request, Step.REGION, "setup/region.html", context, done=done)


@require_perm(Perm.SETUP_MANAGE)
def branches(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.BRANCHES, done):
        return closed
    form = BranchForm(request.POST or None, prefix="branch")
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_add_branch(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            return redirect(_step_url(Step.BRANCHES))
    return _render(request, Step.BRANCHES, "setup/branches.html", _list_context(form), done=done)


def _list_context(form, error: str = "") -> dict:
    summary = selectors.summary()
    return {"form": form, "summary": summary, "error": error}


def _finish(request, step: Step, finish, template: str, form_class, **form_kwargs):
    done = selectors.completed_steps()
    if closed := _closed(step, done):
        return closed
    try:
        finish(acting_user=request.user)
    except ValidationError as exc:
        context = _list_context(form_class(**form_kwargs), error=" ".join(exc.messages))
        return _render(request, step, template, context, done=done, status=422)
    return _after(step)


@require_POST
@require_perm(Perm.SETUP_MANAGE)
def branches_next(request):
    return _finish(
        request, Step.BRANCHES, actions.do_finish_branches_step, "setup/branches.html", BranchForm, prefix="branch"
    )


def _nas_initial(request) -> dict:
    return {
        "name": "bras1",
        "vendor": "mikrotik",
        "secret": new_secret(),
        "interim_interval": 300,
        "radius_address": selectors.suggested_radius_address(request.get_host()),
    }


def _nas_lines(done: dict) -> tuple[Nas | None, str, list[str]]:
    """The NAS the wizard made and its lines (the secret as a placeholder), for a later visit."""
    data = done[Step.NAS.value].data if Step.NAS.value in done else {}
    nas = Nas.objects.filter(pk=data.get("nas_id")).first() if data.get("nas_id") else None
    server = data.get("radius_address", "")
    return nas, server, selectors.radius_config(nas, server=server) if nas is not None else []


@require_perm(Perm.SETUP_MANAGE)
def nas(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.NAS, done):
        return closed
    form = NasForm(request.POST or None, prefix="nas", initial=_nas_initial(request))
    created, secret = None, None
    if request.method == "POST" and form.is_valid():
        try:
            created = actions.do_add_first_nas(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            # The one page that shows the secret: not redirected, so it is never in a URL or a later page.
            secret = form.cleaned_data["secret"]
            done = selectors.completed_steps()
            form = NasForm(prefix="nas", initial=_nas_initial(request))
    shown, server, lines = _nas_lines(done)
    if created is not None:
        server = done[Step.NAS.value].data["radius_address"]
        shown, lines = created, selectors.radius_config(created, server=server, secret=secret)
    context = {
        **_list_context(form),
        "shown": shown,
        "server": server,
        "lines": lines,
        "secret_shown": secret is not None,
        "ports": _ports(),
    }
    return _render(request, Step.NAS, "setup/nas.html", context, done=done)


def _ports() -> dict:
    return {"auth": settings.ABONENT_RADIUS_AUTH_PORT, "acct": settings.ABONENT_RADIUS_ACCT_PORT}


@require_POST
@require_perm(Perm.SETUP_MANAGE)
def nas_next(request):
    return _finish(request, Step.NAS, actions.do_finish_nas_step, "setup/nas.html", NasForm, prefix="nas")


@require_perm(Perm.SETUP_MANAGE)
def plans(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.PLANS, done):
        return closed
    form = PlanForm(request.POST or None, prefix="plan")
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_add_first_plan(acting_user=request.user, **form.plan_values())
        except ValidationError as exc:
            apply_action_errors(form, exc, {"download_kbps": "download_mbps", "upload_kbps": "upload_mbps"})
        else:
            return redirect(_step_url(Step.PLANS))
    return _render(request, Step.PLANS, "setup/plans.html", _list_context(form), done=done)


@require_POST
@require_perm(Perm.SETUP_MANAGE)
def plans_next(request):
    return _finish(request, Step.PLANS, actions.do_finish_plans_step, "setup/plans.html", PlanForm, prefix="plan")


@require_perm(Perm.SETUP_MANAGE)
def payments(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.PAYMENTS, done):
        return closed
    if request.method == "POST":
        actions.do_finish_payments_step(acting_user=request.user)
        return _after(Step.PAYMENTS)
    context = {
        "gateways": gateway_overview(),
        "agents": Agent.objects.count(),
        "fiscal_provider": settings.ABONENT_FISCAL_PROVIDER,
    }
    return _render(request, Step.PAYMENTS, "setup/payments.html", context, done=done)


@require_perm(Perm.SETUP_MANAGE)
def done_page(request):
    done = selectors.completed_steps()
    missing = selectors.first_unfinished(done)
    context = {
        "summary": selectors.summary(),
        "missing": missing,
        "missing_url": _step_url(missing) if missing else "",
        "environment_lines": selectors.environment_lines(company_profile()),
    }
    return _render(request, None, "setup/done.html", context, done=done)
