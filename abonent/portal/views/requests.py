"""Requests (заявки): the subscriber's tickets and a new one; a ticket's public thread, a reply, closing and
reopening it. Every ticket is taken through ``own()``: another subscriber's id is a 404 whatever the method, and
nothing is written."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from abonent.core.forms import apply_action_errors
from abonent.helpdesk import actions, rules
from abonent.helpdesk.models import TicketCategory, TicketSource, TicketStatus

from .. import requests_data
from ..forms.requests import ReplyForm, RequestForm


def _refusal(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def request_list(request):
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    form = RequestForm(request.POST or None, auto_id="request-%s")
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                ticket = actions.do_open_ticket(
                    request.subscriber,
                    actions.TicketData(**form.cleaned_data),
                    source=TicketSource.PORTAL,
                    acting_user=None,
                )
            except ValidationError as exc:
                apply_action_errors(form, exc)
                form.mark_invalid()
            else:
                messages.success(
                    request,
                    _("Request %(number)s is received. We will answer here and by a message.")
                    % {"number": actions.ticket_label(ticket.number)},
                )
                return redirect("portal:request", pk=ticket.pk)
        status = 422
    context = {
        "rows": requests_data.requests_of(request.subscriber),
        "form": form,
        "limit": requests_data.LIST_LIMIT,
        "connection_request": TicketCategory.CONNECTION_REQUEST,
    }
    return render(request, "portal/requests.html", context, status=status)


def _request_page(request, ticket, *, form=None, status: int = 200):
    context = {
        "view": requests_data.view_of(ticket),
        "comments": requests_data.public_thread(ticket),
        "form": form or ReplyForm(auto_id="reply-%s"),
        "reopen_days": rules.reopen_days(),
    }
    return render(request, "portal/request.html", context, status=status)


def request_detail(request, pk: int):
    ticket = requests_data.own_request(request, pk)
    if request.method == "GET":
        return _request_page(request, ticket)
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    form = ReplyForm(request.POST, auto_id="reply-%s")
    if form.is_valid():
        try:
            actions.do_comment_ticket(ticket, text=form.cleaned_data["text"], acting_user=None)
        except ValidationError as exc:
            form.add_error("text" if hasattr(exc, "error_dict") else None, _refusal(exc))
            form.mark_invalid()
        else:
            messages.success(request, _("Your message is sent."))
            return redirect("portal:request", pk=ticket.pk)
    ticket.refresh_from_db()
    return _request_page(request, ticket, form=form, status=422)


def _change_status(request, pk: int, *, status: str, done: str):
    ticket = requests_data.own_request(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        actions.do_change_ticket_status(ticket, status=status, acting_user=None)
    except ValidationError as exc:
        messages.error(request, _refusal(exc))
    else:
        messages.success(request, done)
    return redirect("portal:request", pk=ticket.pk)


def request_close(request, pk: int):
    return _change_status(request, pk, status=TicketStatus.CLOSED, done=_("The request is closed."))


def request_reopen(request, pk: int):
    return _change_status(request, pk, status=actions.REOPENED_STATUS, done=_("The request is open again."))


urlpatterns = [
    path("requests/", request_list, name="requests"),
    path("requests/<int:pk>/", request_detail, name="request"),
    path("requests/<int:pk>/close/", request_close, name="request_close"),
    path("requests/<int:pk>/reopen/", request_reopen, name="request_reopen"),
]
