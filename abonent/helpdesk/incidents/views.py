"""The incident pages of the staff console, under ``/staff/incidents/``: the list, an incident with its affected
subscribers (keyset pages, the user's branches only), linked tickets, messages and compensation; the form; resolve,
message and compensate buttons. Each POST calls one action; a refusal comes back as the form's field errors (422)."""

from __future__ import annotations

import functools
import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from abonent.core.deadlines import is_deadline
from abonent.core.forms import apply_action_errors
from abonent.core.listing import keyset_page, query_without
from abonent.staff.permissions import Perm, allowed_branch_ids, has_perm, require_perm

from . import actions, selectors
from .compensation import MAX_DAYS, do_compensate_incident
from .forms import CompensationForm, IncidentForm, MessageForm, format_areas
from .models import Compensation

logger = logging.getLogger(__name__)
PAGE = 50
AFFECTED_PAGE = 100
LIST_ORDER = ("-starts_at", "-id")


def answers_busy(view):
    """A write that waited past its lock deadline (another change or a long compensation of the same incident holds
    its row: ``core.deadlines``) answers the incident's page with 503, ``Retry-After`` and a note that nothing was
    done, not a 500. The action's transaction rolled back whole."""

    @functools.wraps(view)
    def wrapper(request, *args, pk: int | None = None, **kwargs):
        try:
            return view(request, *args, **kwargs) if pk is None else view(request, *args, pk=pk, **kwargs)
        except OperationalError as exc:
            if not is_deadline(exc):
                raise
            logger.warning("%s %s: the incident was busy past the deadline", request.method, request.path)
            messages.error(
                request,
                _(
                    "Someone else is changing or compensating this incident right now; nothing was done. "
                    "Try again in a minute."
                ),
            )
            if pk is None:  # the list with the note (a 503 redirect would not be followed)
                response = incident_list(request)
                response.status_code = 503
            else:
                response = _detail(request, selectors.get_incident(pk), status=503)
            response["Retry-After"] = "30"
            return response

    return wrapper


@require_perm(Perm.TICKET_VIEW)
def incident_list(request):
    status = request.GET.get("status", "open")
    if status not in selectors.STATUS_FILTERS:
        status = "open"
    page = keyset_page(selectors.incidents(status), ordering=LIST_ORDER, cursor=request.GET.get("cursor"), size=PAGE)
    context = {
        "page": page,
        "status": status,
        "can_manage": has_perm(request.user, Perm.INCIDENT_MANAGE),
        "query_string": query_without(request.GET, "cursor"),
    }
    return render(request, "incidents/incident_list.html", context)


def _detail(request, incident, *, message_form=None, compensation_form=None, status: int = 200):
    user = request.user
    page = keyset_page(
        selectors.affected_of(user, incident), ordering=("id",), cursor=request.GET.get("cursor"), size=AFFECTED_PAGE
    )
    can_compensate = (
        has_perm(user, Perm.INCIDENT_COMPENSATE)
        and has_perm(user, Perm.BILLING_ADJUST)
        and allowed_branch_ids(user) is None
    )
    can_message = has_perm(user, Perm.INCIDENT_MANAGE) and has_perm(user, Perm.NOTIFICATION_BULK)
    compensation = Compensation.objects.filter(incident=incident).select_related("created_by").first()
    context = {
        "incident": incident,
        "nas": list(incident.nas.order_by("name")),
        "areas": list(incident.areas.all()),
        "page": page,
        "branch_limited": allowed_branch_ids(user) is not None,
        "tickets": list(selectors.linked_tickets(user, incident)[:100]),
        "sent": list(selectors.messages_of(incident)),
        "compensation": compensation,
        "can_manage": has_perm(user, Perm.INCIDENT_MANAGE),
        "message_form": (message_form or MessageForm(auto_id="message-%s")) if can_message else None,
        "compensation_form": (compensation_form or CompensationForm(auto_id="compensation-%s"))
        if can_compensate and compensation is None and not incident.is_open
        else None,
        "max_days": MAX_DAYS,
        "query_string": query_without(request.GET, "cursor"),
    }
    return render(request, "incidents/incident.html", context, status=status)


@require_perm(Perm.TICKET_VIEW)
def incident_detail(request, pk: int):
    return _detail(request, selectors.get_incident(pk))


def _affected_message(done: str, incident) -> str:
    count = incident.affected_count
    return f"{done} " + ngettext("%(count)s subscriber affected.", "%(count)s subscribers affected.", count) % {
        "count": count
    }


def _form_page(request, form, incident=None, status: int = 200):
    return render(request, "incidents/incident_form.html", {"form": form, "incident": incident}, status=status)


@require_perm(Perm.INCIDENT_MANAGE)
@answers_busy
def incident_new(request):
    if request.method != "POST":
        return _form_page(request, IncidentForm(initial={"starts_at": timezone.localtime()}, auto_id="incident-%s"))
    form = IncidentForm(request.POST, auto_id="incident-%s")
    if form.is_valid():
        try:
            incident = actions.do_open_incident(form.to_data(), acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _affected_message(_("Incident opened."), incident))
            return redirect("incidents:detail", incident.pk)
    return _form_page(request, form, status=422)


@require_perm(Perm.INCIDENT_MANAGE)
@answers_busy
def incident_edit(request, pk: int):
    incident = selectors.get_incident(pk)
    if request.method != "POST":
        initial = {
            "title": incident.title,
            "kind": incident.kind,
            "starts_at": timezone.localtime(incident.starts_at),
            "description": incident.description,
            "nas": list(incident.nas.all()),
            "areas": format_areas(incident),
        }
        return _form_page(request, IncidentForm(initial=initial, auto_id="incident-%s"), incident)
    form = IncidentForm(request.POST, auto_id="incident-%s")
    if form.is_valid():
        try:
            incident = actions.do_update_incident(incident, form.to_data(), acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _affected_message(_("Incident saved."), incident))
            return redirect("incidents:detail", incident.pk)
    return _form_page(request, form, incident, status=422)


@require_POST
@require_perm(Perm.INCIDENT_MANAGE)
@answers_busy
def incident_resolve(request, pk: int):
    incident = selectors.get_incident(pk)
    try:
        actions.do_resolve_incident(incident, acting_user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Incident resolved."))
    return redirect("incidents:detail", incident.pk)


@require_POST
@require_perm(Perm.INCIDENT_MANAGE)
@answers_busy
def incident_message(request, pk: int):
    incident = selectors.get_incident(pk)
    form = MessageForm(request.POST, auto_id="message-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            _message, created = actions.do_message_incident(
                incident, channel=data["channel"], subject=data["subject"], body=data["body"], acting_user=request.user
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            if created:
                messages.success(request, _("The message is queued for the affected subscribers."))
            else:
                messages.info(request, _("This message was sent already; nobody gets it twice."))
            return redirect("incidents:detail", incident.pk)
    return _detail(request, incident, message_form=form, status=422)


@require_POST
@require_perm(Perm.INCIDENT_COMPENSATE)
@answers_busy
def incident_compensate(request, pk: int):
    incident = selectors.get_incident(pk)
    form = CompensationForm(request.POST, auto_id="compensation-%s")
    if form.is_valid():
        try:
            _compensation, created = do_compensate_incident(
                incident, days=form.cleaned_data["days"], acting_user=request.user
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            if created:
                messages.success(request, _("Compensation credited."))
            else:
                messages.info(request, _("This incident was compensated already; nothing was credited again."))
            return redirect("incidents:detail", incident.pk)
    return _detail(request, incident, compensation_form=form, status=422)
