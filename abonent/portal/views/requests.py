"""Requests (заявки): the subscriber's tickets and a new one; a ticket's public thread, a reply, closing and
reopening it. Every ticket is taken through ``own()``: another subscriber's id is a 404 whatever the method, and
nothing is written."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from abonent.core.forms import apply_action_errors
from abonent.helpdesk import actions, rules
from abonent.helpdesk.attachments import Upload
from abonent.helpdesk.downloads import file_response, refusal_status
from abonent.helpdesk.models import TicketCategory, TicketSource, TicketStatus
from abonent.helpdesk.selectors import attachments_of, get_public_attachment

from .. import requests_data
from ..forms.requests import ReplyForm, RequestForm

logger = logging.getLogger(__name__)


def _refusal(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# Fields a forged form might use to name whose request it is. The form has none: a request is always the signed-in
# subscriber's. One naming someone else is refused with a clear error and logged, not silently re-aimed.
_SUBSCRIBER_FIELDS = ("subscriber", "subscriber_id", "account", "account_number")


def _names_someone_else(request) -> bool:
    own = {str(request.subscriber.pk), str(request.subscriber.account_number)}
    named = [request.POST.get(name, "").strip() for name in _SUBSCRIBER_FIELDS]
    return any(value and value not in own for value in named)


def _uploads(request, form) -> list[Upload]:
    """Every file sent under the field (the form field keeps only the last): more than the action takes is refused
    whole, never cut to one."""
    form.cleaned_data.pop("attachment", None)
    return [Upload(name=f.name, file=f, size=f.size) for f in request.FILES.getlist("attachment")]


def request_list(request):
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    form = RequestForm(request.POST or None, request.FILES or None, auto_id="request-%s")
    status = 200
    if request.method == "POST" and _names_someone_else(request):
        logger.warning("portal: subscriber %s posted a request naming another subscriber", request.subscriber.pk)
        form.is_valid()
        form.add_error(None, _("A request can be opened only for your own account."))
    elif request.method == "POST" and form.is_valid():
        uploads = _uploads(request, form)
        try:
            # Always the signed-in subscriber's own: no field of the form names a subscriber.
            ticket = actions.do_open_ticket(
                request.subscriber,
                actions.TicketData(**form.cleaned_data),
                source=TicketSource.PORTAL,
                acting_user=None,
                uploads=uploads,
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
    if request.method == "POST":
        status = refusal_status(form)
    context = {
        "rows": requests_data.requests_of(request.subscriber),
        "form": form,
        "limit": requests_data.LIST_LIMIT,
        "connection_request": TicketCategory.CONNECTION_REQUEST,
    }
    return render(request, "portal/requests.html", context, status=status)


def _request_page(request, ticket, *, form=None, status: int = 200):
    comments = requests_data.public_thread(ticket)
    files = attachments_of(ticket, public_only=True)
    for comment in comments:
        comment.files = files.get(comment.pk, [])
    context = {
        "view": requests_data.view_of(ticket),
        "comments": comments,
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
    form = ReplyForm(request.POST, request.FILES, auto_id="reply-%s")
    if form.is_valid():
        try:
            actions.do_comment_ticket(
                ticket, text=form.cleaned_data["text"], acting_user=None, uploads=_uploads(request, form)
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict") and "attachment" in exc.error_dict:
                apply_action_errors(form, exc)
            else:
                form.add_error("text" if hasattr(exc, "error_dict") else None, _refusal(exc))
            form.mark_invalid()
        else:
            messages.success(request, _("Your message is sent."))
            return redirect("portal:request", pk=ticket.pk)
    ticket.refresh_from_db()
    return _request_page(request, ticket, form=form, status=refusal_status(form))


def request_attachment(request, pk: int, attachment_pk: int):
    """A file of the subscriber's own ticket, on a public message only; anything else is a 404."""
    ticket = requests_data.own_request(request, pk)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    return file_response(get_public_attachment(ticket, attachment_pk))


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
    path("requests/<int:pk>/files/<int:attachment_pk>/", request_attachment, name="request_attachment"),
]
