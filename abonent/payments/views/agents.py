"""Console pages of payment agents, under ``/staff/payments/agents/``: the list and the daily reconciliation
report for ``payment.view``; create, edit and a new secret for ``payment.settings``. Thin: parse, check access,
call an action or a selector, render. A secret is shown once, on the page answering the post that made it
(``no-store``), and never again."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, has_perm, require_perm

from ..actions import agents as actions
from ..forms.agents import AgentForm, RegisterForm, ReportDayForm
from ..models import Agent
from ..selectors import agents as selectors


def _secret_page(request, agent: Agent, secret: str, *, created: bool):
    url = request.build_absolute_uri(reverse("pay:agent", args=[agent.code]))
    response = render(
        request, "payments/agent_secret.html", {"agent": agent, "secret": secret, "url": url, "created": created}
    )
    add_never_cache_headers(response)
    return response


@require_perm(Perm.PAYMENT_VIEW)
def agent_list(request):
    agents = list(selectors.list_agents())
    for agent in agents:
        agent.url = request.build_absolute_uri(reverse("pay:agent", args=[agent.code]))
        agent.network_list = agent.networks.split()
    return render(
        request,
        "payments/agent_list.html",
        {"agents": agents, "can_edit": has_perm(request.user, Perm.PAYMENT_SETTINGS)},
    )


@require_perm(Perm.PAYMENT_SETTINGS)
def agent_create(request):
    form = AgentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            agent, secret = actions.do_create_agent(
                code=form.cleaned_data["code"], acting_user=request.user, **form.values()
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            return _secret_page(request, agent, secret, created=True)
    return render(
        request, "payments/agent_form.html", {"form": form, "agent": None}, status=422 if form.errors else 200
    )


@require_perm(Perm.PAYMENT_SETTINGS)
def agent_edit(request, pk: int):
    agent = get_object_or_404(Agent, pk=pk)
    form = AgentForm(request.POST or None, initial=AgentForm.initial_of(agent), editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            agent = actions.do_update_agent(agent, acting_user=request.user, **form.values())
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Agent %(name)s saved.") % {"name": agent.name})
            return redirect("payments:agents")
    status = 422 if form.errors else 200
    return render(request, "payments/agent_form.html", {"form": form, "agent": agent}, status=status)


@require_POST
@require_perm(Perm.PAYMENT_SETTINGS)
def agent_rotate_secret(request, pk: int):
    agent = get_object_or_404(Agent, pk=pk)
    secret = actions.do_rotate_agent_secret(agent, acting_user=request.user)
    return _secret_page(request, agent, secret, created=False)


def _report_of(request, pk: int):
    agent = get_object_or_404(Agent, pk=pk)
    form = ReportDayForm(request.GET or None)
    day = form.cleaned_data["day"] if form.is_valid() else selectors.agent_today(agent)
    if not form.is_bound or form.errors:
        form = ReportDayForm(initial={"day": day})
    return agent, day, form


@require_perm(Perm.PAYMENT_VIEW)
def agent_report(request, pk: int):
    agent, day, form = _report_of(request, pk)
    report = selectors.agent_day_report(agent, day)
    context = {"agent": agent, "report": report, "form": form, "register_form": RegisterForm(initial={"day": day})}
    return render(request, "payments/agent_report.html", context)


@require_POST
@require_perm(Perm.PAYMENT_VIEW)
def agent_register(request, pk: int):
    """The agent's register compared with ours. Reads only: nothing is written whatever the file holds."""
    agent = get_object_or_404(Agent, pk=pk)
    form = RegisterForm(request.POST, request.FILES)
    comparison = None
    if form.is_valid():
        comparison = selectors.compare_register(agent, form.cleaned_data["register"], form.cleaned_data["day"])
    context = {"agent": agent, "register_form": form, "comparison": comparison}
    return render(request, "payments/agent_register.html", context, status=422 if form.errors else 200)


@require_perm(Perm.PAYMENT_VIEW)
def agent_report_csv(request, pk: int):
    agent, day, _form = _report_of(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="agent-{agent.code}-{day:%Y-%m-%d}.csv"'
    writer = csv.writer(response, delimiter=";")
    for row in selectors.report_rows(selectors.agent_day_report(agent, day)):
        writer.writerow(row)
    return response
