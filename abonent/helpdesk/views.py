"""The helpdesk pages of the staff console, under ``/staff/helpdesk/``: the list with filters, a ticket with its
whole thread (internal notes too), a reply or a note, a status change, a ticket opened from the subscriber card."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.core import clock
from abonent.core.forms import apply_action_errors
from abonent.core.listing import Column, Sorting, export_response, keyset_page, query_without
from abonent.staff.permissions import Perm, has_perm, require_perm
from abonent.subscribers.panels import render_panel
from abonent.subscribers.selectors import get_subscriber

from . import actions, rules, selectors, sla
from .attachments import Upload
from .downloads import refusal_status
from .forms import ReplyForm, RoutingForm, StatusForm, TicketFilterForm, TicketOpenForm
from .models import TicketSource, TicketStatus
from .panels import PANEL

PAGE = 50
# The list's sorts (core.listing.Sorting): the most recently touched first by default; by opening time; by number.
TICKET_SORTING = Sorting(
    {"updated": ("updated_at", "id"), "opened": ("created_at", "id"), "number": ("number", "id")}, default="-updated"
)


def _listing(request):
    form = TicketFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    subscriber_pk = selectors.as_number(request.GET.get("subscriber", ""))
    subscriber = get_subscriber(request.user, subscriber_pk) if subscriber_pk is not None else None
    filters = selectors.TicketFilters(
        status=data.get("status") or selectors.OPEN,
        category=data.get("category") or "",
        priority=data.get("priority") or "",
        source=data.get("source") or "",
        query=data.get("q") or "",
        subscriber_id=subscriber.pk if subscriber else None,
        queue_id=data["queue"].pk if data.get("queue") else None,
        assignee=data.get("assignee") or "",
        assignee_user_id=request.user.pk,
        sla=data.get("sla") or "",
    )
    sort, order = TICKET_SORTING.choose(request.GET.get("sort"))
    return form, subscriber, filters, sort, order


@require_perm(Perm.TICKET_VIEW)
def ticket_list(request):
    form, subscriber, filters, sort, order = _listing(request)
    counts = selectors.status_counts(request.user, filters)
    page = keyset_page(
        selectors.filtered_tickets(request.user, filters), ordering=order, cursor=request.GET.get("cursor"), size=PAGE
    )
    now = clock.now()
    for ticket in page:
        ticket.timers = (sla.first_response_timer(ticket, now), sla.resolution_timer(ticket, now))
    context = {
        "form": form,
        "subscriber": subscriber,
        "page": page,
        "now": now,
        "alerts": selectors.alerts_for(request.user),
        "counts": [(value, label, counts.get(value, 0)) for value, label in TicketStatus.choices],
        "sort": sort,
        "query_string": query_without(request.GET, "cursor", "format"),
        "sort_query": query_without(request.GET, "cursor", "format", "sort"),
    }
    return render(request, "helpdesk/ticket_list.html", context)


TICKET_COLUMNS = [
    Column(gettext_lazy("No."), lambda t: t.number),
    Column(gettext_lazy("Subject"), lambda t: t.subject),
    Column(gettext_lazy("Category"), lambda t: t.get_category_display()),
    Column(gettext_lazy("Status"), lambda t: t.get_status_display()),
    Column(gettext_lazy("Priority"), lambda t: t.get_priority_display()),
    Column(gettext_lazy("Account"), lambda t: t.subscriber.account_number),
    Column(gettext_lazy("Subscriber"), lambda t: t.subscriber.display_name),
    Column(gettext_lazy("Source"), lambda t: t.get_source_display()),
    Column(gettext_lazy("Opened"), lambda t: t.created_at),
    Column(gettext_lazy("First response"), lambda t: t.first_response_at),
    Column(gettext_lazy("Updated"), lambda t: t.updated_at),
    Column(gettext_lazy("Closed"), lambda t: t.closed_at),
    # Issue 18's columns after the earlier ones, so that a sheet built on the old order keeps reading.
    Column(gettext_lazy("Queue"), lambda t: t.queue.name if t.queue_id else ""),
    Column(gettext_lazy("Assignee"), lambda t: t.assignee.get_username() if t.assignee_id else ""),
    Column(gettext_lazy("First response due"), lambda t: t.first_response_due_at),
    Column(gettext_lazy("Resolution due"), lambda t: t.resolution_due_at),
    Column(gettext_lazy("Escalated"), lambda t: t.escalated_at),
]


@require_perm(Perm.TICKET_VIEW)
def ticket_export(request):
    """The filtered list in its order as CSV or XLSX: no internal notes, no thread, the tickets' headers."""
    _form, _subscriber, filters, _sort, order = _listing(request)
    rows = selectors.filtered_tickets(request.user, filters).order_by(*order).iterator(chunk_size=2000)
    return export_response(request.GET.get("format", ""), "requests", TICKET_COLUMNS, rows)


def _ticket_page(request, ticket, *, reply_form=None, status_form=None, routing_form=None, status: int = 200):
    can_manage = has_perm(request.user, Perm.TICKET_MANAGE)
    now = clock.now()
    comments = selectors.thread(ticket, public_only=False)
    files = selectors.attachments_of(ticket, public_only=False)
    for comment in comments:
        comment.files = files.get(comment.pk, [])
    context = {
        "ticket": ticket,
        "now": now,
        "first_response_timer": sla.first_response_timer(ticket, now),
        "resolution_timer": sla.resolution_timer(ticket, now),
        "routing_form": (
            routing_form
            or RoutingForm(
                ticket=ticket,
                auto_id="routing-%s",
                initial={
                    "queue": ticket.queue_id,
                    "assignee": ticket.assignee_id,
                    "priority": ticket.priority,
                    "nas": ticket.nas_id,
                    "equipment": ticket.equipment_id or "",
                },
            )
        )
        if can_manage
        else None,
        "comments": comments,
        "can_manage": can_manage,
        "reply_form": (reply_form or ReplyForm(auto_id="reply-%s")) if can_manage else None,
        "status_form": (status_form or StatusForm(initial={"status": ticket.status}, auto_id="status-%s"))
        if can_manage
        else None,
        "subscriber_status": rules.subscriber_status_label(ticket.status),
    }
    return render(request, "helpdesk/ticket.html", context, status=status)


@require_perm(Perm.TICKET_VIEW)
def ticket_detail(request, pk: int):
    return _ticket_page(request, selectors.get_ticket(request.user, pk))


@require_POST
@require_perm(Perm.TICKET_MANAGE)
def ticket_reply(request, pk: int):
    ticket = selectors.get_ticket(request.user, pk)
    form = ReplyForm(request.POST, request.FILES, auto_id="reply-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_comment_ticket(
                ticket,
                text=data["text"],
                is_public=data["visibility"] == "public",
                status=data["status"] or None,
                acting_user=request.user,
                # Every file sent under the field, not only the last the form field keeps: the action takes up to
                # MAX_FILES and refuses more, rather than the message going out with one of them.
                uploads=[Upload(name=f.name, file=f, size=f.size) for f in request.FILES.getlist("attachment")],
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
            form.mark_invalid()
        else:
            messages.success(request, _("Reply sent.") if data["visibility"] == "public" else _("Internal note added."))
            return redirect("helpdesk:ticket", pk=ticket.pk)
    return _ticket_page(request, ticket, reply_form=form, status=refusal_status(form))


@require_POST
@require_perm(Perm.TICKET_MANAGE)
def ticket_status(request, pk: int):
    ticket = selectors.get_ticket(request.user, pk)
    form = StatusForm(request.POST, auto_id="status-%s")
    if form.is_valid():
        try:
            actions.do_change_ticket_status(
                ticket, status=form.cleaned_data["status"], reason=form.cleaned_data["reason"], acting_user=request.user
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Status saved."))
            return redirect("helpdesk:ticket", pk=ticket.pk)
    return _ticket_page(request, ticket, status_form=form, status=422)


@require_POST
@require_perm(Perm.TICKET_MANAGE)
def ticket_open(request, pk: int):
    """The card's "Requests" panel: a ticket opened for the subscriber (a call, a visit)."""
    subscriber = get_subscriber(request.user, pk)
    form = TicketOpenForm(request.POST, auto_id="ticket-%s")
    status = 422
    if form.is_valid():
        try:
            ticket = actions.do_open_ticket(
                subscriber,
                actions.TicketData(**form.cleaned_data),
                source=TicketSource.CONSOLE,
                acting_user=request.user,
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            if not request.htmx:
                return redirect("helpdesk:ticket", pk=ticket.pk)
            form, status = None, 200
    if not request.htmx:
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-tickets")
    # A failed form is shown back with its errors; after a success the panel offers a fresh one.
    overrides = {"form": form} if form is not None else {}
    return HttpResponse(render_panel(request, subscriber, PANEL, **overrides), status=status)
