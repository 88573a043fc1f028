"""The first-run wizard under ``/staff/setup/``: one page a step, walked in order, each saved as it is sent, so an
administrator who stops halfway comes back to where they were (``/staff/setup/`` resumes)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from abonent.core.company import company_details, company_profile, fiscal_inn_mismatch, tax_settings
from abonent.core.forms import apply_action_errors
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
        "time_zones": time_zone_names() if step in (Step.REGION, Step.BRANCHES) else [],
        "fiscal_inn_mismatch": fiscal_inn_mismatch(),
        **context,
    }
    return render(request, template, context, status=status)


def _status(form) -> int:
    return 422 if form.errors else 200


def _refused(form, exc: ValidationError, field_map: dict | None = None) -> None:
    """An action's refusal on the fields it names, marked for the eye and for assistive technology."""
    apply_action_errors(form, exc, field_map)
    form.mark_invalid()


@require_GET
@require_perm(Perm.SETUP_MANAGE)
def banner(request):
    """The console's "Finish set-up" banner, fetched by base.html after the page has loaded (so a page's own
    queries stay what they are): the banner while the wizard is not done on a new installation, else nothing."""
    if not selectors.shows_banner(request.user):
        return HttpResponse(status=204)
    return render(request, "setup/_banner.html")


@require_perm(Perm.SETUP_MANAGE)
def index(request):
    return redirect(_step_url(selectors.first_unfinished()))


def _form_step(request, step: Step, form_class, initial, save, template: str):
    """A step that is one form saved by one action (company, taxes): ``initial()`` fills it, ``save`` is the
    action, and a saved step goes on to the next."""
    done = selectors.completed_steps()
    if closed := _closed(step, done):
        return closed
    form = form_class(request.POST or None, initial=initial())
    if request.method == "POST" and form.is_valid():
        try:
            save(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            return _after(step)
    return _render(request, step, template, {"form": form}, done=done, status=_status(form))


def _company_initial() -> dict:
    return company_details().as_dict()


@require_perm(Perm.SETUP_MANAGE)
def company(request):
    return _form_step(
        request, Step.COMPANY, CompanyForm, _company_initial, actions.do_save_company_step, "setup/company.html"
    )


def _taxes_initial() -> dict:
    current = tax_settings()
    return {"tax_system": current.tax_system, "vat_mode": current.vat_mode}


@require_perm(Perm.SETUP_MANAGE)
def taxes(request):
    return _form_step(request, Step.TAXES, TaxesForm, _taxes_initial, actions.do_save_taxes_step, "setup/taxes.html")


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
            _refused(form, exc)
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
    return _render(request, Step.REGION, "setup/region.html", context, done=done, status=_status(form))


# --- the steps that add rows (branches, NAS, plans) and are finished by "Continue" ----------------------------


def _branches_page(request, done: dict, form, *, error: str = "", status: int = 200):
    context = {"form": form, "summary": selectors.summary(), "error": error}
    return _render(request, Step.BRANCHES, "setup/branches.html", context, done=done, status=status)


def _nas_page(request, done: dict, form, *, error: str = "", status: int = 200, created=None, secret=None):
    """The NAS step. Right after ``created`` is registered its lines carry ``secret``, the one time it is shown
    (this response is not a redirect, so the secret is in no URL or later page); else the lines of the NAS the
    wizard made before, with a placeholder."""
    shown, server = selectors.wizard_nas(done)
    if created is not None:
        shown = created
    lines = selectors.radius_config(shown, server=server, secret=secret) if shown is not None else []
    context = {
        "form": form,
        "summary": selectors.summary(),
        "error": error,
        "shown": shown,
        "lines": lines,
        "secret_shown": secret is not None,
        # Text, not numbers: a port is not "1 812".
        "ports": {"auth": str(settings.ABONENT_RADIUS_AUTH_PORT), "acct": str(settings.ABONENT_RADIUS_ACCT_PORT)},
    }
    return _render(request, Step.NAS, "setup/nas.html", context, done=done, status=status)


def _plans_page(request, done: dict, form, *, error: str = "", status: int = 200):
    context = {"form": form, "summary": selectors.summary(), "error": error}
    return _render(request, Step.PLANS, "setup/plans.html", context, done=done, status=status)


def _finish(request, step: Step, finish, page, blank_form):
    """ "Continue" on a step that adds rows: done when the step's condition holds, else the step again with why."""
    done = selectors.completed_steps()
    if closed := _closed(step, done):
        return closed
    try:
        finish(acting_user=request.user)
    except ValidationError as exc:
        return page(request, done, blank_form(), error=" ".join(exc.messages), status=422)
    return _after(step)


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
            _refused(form, exc)
        else:
            return redirect(_step_url(Step.BRANCHES))
    return _branches_page(request, done, form, status=_status(form))


@require_POST
@require_perm(Perm.SETUP_MANAGE)
def branches_next(request):
    return _finish(
        request, Step.BRANCHES, actions.do_finish_branches_step, _branches_page, lambda: BranchForm(prefix="branch")
    )


def _nas_form(request, data=None) -> NasForm:
    initial = {
        "name": "bras1",
        "vendor": "mikrotik",
        "secret": new_secret(),
        "interim_interval": 300,
        "radius_address": selectors.suggested_radius_address(request.get_host()),
    }
    return NasForm(data, prefix="nas", initial=initial)


@require_perm(Perm.SETUP_MANAGE)
def nas(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.NAS, done):
        return closed
    form = _nas_form(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = actions.do_add_first_nas(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _refused(form, exc)
        else:
            done = selectors.completed_steps()
            secret = form.cleaned_data["secret"]
            return _nas_page(request, done, _nas_form(request), created=created, secret=secret)
    return _nas_page(request, done, form, status=_status(form))


@require_POST
@require_perm(Perm.SETUP_MANAGE)
def nas_next(request):
    return _finish(request, Step.NAS, actions.do_finish_nas_step, _nas_page, lambda: _nas_form(request))


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
            _refused(form, exc, {"download_kbps": "download_mbps", "upload_kbps": "upload_mbps"})
        else:
            return redirect(_step_url(Step.PLANS))
    return _plans_page(request, done, form, status=_status(form))


@require_POST
@require_perm(Perm.SETUP_MANAGE)
def plans_next(request):
    return _finish(request, Step.PLANS, actions.do_finish_plans_step, _plans_page, lambda: PlanForm(prefix="plan"))


@require_perm(Perm.SETUP_MANAGE)
def payments(request):
    done = selectors.completed_steps()
    if closed := _closed(Step.PAYMENTS, done):
        return closed
    if request.method == "POST":
        actions.do_finish_payments_step(acting_user=request.user)
        return _after(Step.PAYMENTS)
    context = {"channels": selectors.payment_channels()}
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
