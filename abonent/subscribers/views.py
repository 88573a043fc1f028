"""Staff console pages for subscribers. Thin: parse, check access, call an action or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import prefetch_related_objects
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, check_perm, has_perm, require_perm

from . import actions, selectors
from .extensions import list_extensions_for, render_badges, render_header_items
from .forms import (
    AddressForm,
    CloseForm,
    ConnectionEventForm,
    ContactForm,
    EquipmentAssignForm,
    NoteForm,
    SubscriberCreateForm,
    SubscriberEditForm,
    SubscriberFilterForm,
)
from .history import history_lines
from .models import Address, AddressKind, ContactKind
from .panels import Lines, Panel, panels_for, register_panel, render_panel


def _filters_of(form: SubscriberFilterForm) -> selectors.SubscriberFilters:
    # Each field on its own: a tampered status, branch or page drops that filter, never the query with it.
    data = form.valid_data()
    return selectors.SubscriberFilters(
        query=data.get("q") or "",
        branch_id=data["branch"].pk if data.get("branch") else None,
        status=data.get("status") or "",
        kind=data.get("kind") or "",
        group_id=data["group"].pk if data.get("group") else None,
        extra=form.extra_filters(),
    )


@require_perm(Perm.SUBSCRIBER_VIEW)
def subscriber_list(request):
    form = SubscriberFilterForm(request.GET or None, user=request.user)
    filters = _filters_of(form)
    page_number = form.valid_data().get("page") or 1
    empty = selectors.SearchPage(results=[], page=1, has_next=False, terms=[])
    if form.has_error("q"):
        # A query that did not clean lists nobody rather than everybody.
        page = empty
    else:
        if filters.query and not request.htmx and page_number == 1:
            # A search submitted (Enter, the navbar's box) for exactly an account, contract, phone, login, IP or MAC
            # of one subscriber the user may see, and that the other filters let through, opens the card. Live
            # results as one types never jump.
            found = selectors.find_by_identifier(request.user, filters.query, filters=filters)
            if found is not None:
                return redirect("subscribers:card", pk=found.pk)
        try:
            page = selectors.search_subscribers(request.user, filters, page=page_number, count=True)
        except ValidationError as exc:
            # A query too long to run: say why (``_results.html`` shows the errors on q) instead of a 500.
            apply_action_errors(form, exc)
            page = empty
    extensions = list_extensions_for(request.user)
    status_cell = next((e for e in extensions if e.replaces_status), None)
    columns = [e for e in extensions if not e.replaces_status]
    for subscriber in page.results:
        subscriber.extra_cells = [column.cell(subscriber) for column in columns]
        subscriber.status_cell = status_cell.cell(subscriber) if status_cell and not subscriber.is_closed else None
    params = request.GET.copy()
    params.pop("page", None)
    # The filters left out, said above the results too: the form itself is not swapped by the live search.
    filter_errors = [
        (form[name].label, error)
        for name, errors in form.errors.items()
        if name in form.fields and name != "q"
        for error in errors
    ]
    context = {
        "form": form,
        "page": page,
        "query_string": params.urlencode(),
        "extra_columns": columns,
        "filter_errors": filter_errors,
    }
    # A tampered filter is refused (422, its error beside it); a query too long to run says why with the page.
    status = 422 if filter_errors else 200
    if request.htmx and request.htmx.target == "results":
        return render(request, "subscribers/_results.html", context, status=status)
    return render(request, "subscribers/list.html", context, status=status)


QUICK_RESULTS = 8


@require_perm(Perm.SUBSCRIBER_VIEW)
def subscriber_quick_search(request):
    """The navbar's live search: the first few matches as a listbox (HTMX), an exact identifier's subscriber first."""
    query = (request.GET.get("q") or "").strip()
    context = {"query": query, "results": [], "exact": None, "message": ""}
    if query:
        try:
            page = selectors.search_subscribers(
                request.user, selectors.SubscriberFilters(query=query), page_size=QUICK_RESULTS
            )
        except ValidationError as exc:
            context["message"] = " ".join(exc.messages)
        else:
            exact = selectors.find_by_identifier(request.user, query)
            results = page.results
            if exact is not None:
                results = [exact, *(s for s in results if s.pk != exact.pk)][:QUICK_RESULTS]
            context.update(results=results, exact=exact, has_more=page.has_next)
            if page.query_too_short:
                context["message"] = _("Type at least 3 characters to search.")
            elif not results:
                context["message"] = _("Nothing found.")
    return render(request, "subscribers/_quick.html", context)


@require_perm(Perm.SUBSCRIBER_CREATE)
def subscriber_create(request):
    form = SubscriberCreateForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        values = form.profile_values()
        data = form.cleaned_data
        contacts = []
        if data["phone"]:
            contacts.append(actions.ContactData(kind="phone", value=data["phone"], is_primary=True))
        if data["email"]:
            contacts.append(actions.ContactData(kind="email", value=data["email"], is_primary=True))
        addresses = []
        if data["city"] or data["house"] or data["street"]:
            addresses.append(
                actions.AddressData(
                    city=data["city"],
                    street=data["street"],
                    house=data["house"],
                    building=data["building"],
                    apartment=data["apartment"],
                )
            )
        try:
            subscriber = actions.do_create_subscriber(
                actions.SubscriberData(
                    **values,
                    account_number=data["account_number"],
                    contract_number=data["contract_number"],
                    contract_signed_on=data["contract_signed_on"],
                    contacts=contacts,
                    addresses=addresses,
                ),
                acting_user=request.user,
            )
        except ValidationError as exc:
            apply_action_errors(form, exc, SubscriberCreateForm.FIELD_MAP)
        else:
            messages.success(request, _("Subscriber %(account)s created.") % {"account": subscriber.account_number})
            return redirect("subscribers:card", pk=subscriber.pk)
    return render(
        request,
        "subscribers/form.html",
        {"form": form, "title": _("New subscriber")},
        status=422 if form.errors else 200,
    )


@require_perm(Perm.SUBSCRIBER_EDIT)
def subscriber_edit(request, pk):
    subscriber = selectors.get_subscriber(request.user, pk)
    initial = {name: getattr(subscriber, name) for name in actions.PROFILE_FIELDS}
    initial.update(
        branch_id=subscriber.branch_id,
        legacy_account=subscriber.legacy_account or "",
        groups=list(subscriber.groups.all()),
        consent_personal_data=subscriber.consent_personal_data,
        consent_marketing=subscriber.consent_marketing,
    )
    form = SubscriberEditForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_subscriber(
                subscriber, changes=form.profile_values(), acting_user=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Changes saved."))
            return redirect("subscribers:card", pk=subscriber.pk)
    return render(
        request,
        "subscribers/form.html",
        {"form": form, "subscriber": subscriber, "title": _("Edit subscriber")},
        status=422 if form.errors else 200,
    )


def _main_address(addresses) -> Address | None:
    """The address the card's header shows: where the service is delivered, else the first one."""
    addresses = list(addresses)
    return next((a for a in addresses if a.kind == AddressKind.SERVICE), addresses[0] if addresses else None)


@require_perm(Perm.SUBSCRIBER_VIEW)
def subscriber_card(request, pk):
    subscriber = selectors.get_subscriber(request.user, pk)
    # Read once for the header, the profile and the contacts and addresses panels alike.
    prefetch_related_objects([subscriber], "contacts", "addresses", "groups", "contracts")
    phones = [c for c in subscriber.contacts.all() if c.kind == ContactKind.PHONE]  # the primary one first
    panels = [render_panel(request, subscriber, panel) for panel in panels_for(request.user)]
    badges, status_replaced = render_badges(request, subscriber)
    return render(
        request,
        "subscribers/card.html",
        {
            "subscriber": subscriber,
            "phone": phones[0] if phones else None,
            "more_phones": len(phones) - 1,
            "address": _main_address(subscriber.addresses.all()),
            "header_items": render_header_items(request, subscriber),
            "panels": panels,
            "badges": badges,
            "status_replaced": status_replaced,
            "close_form": CloseForm(),
            "can_edit": has_perm(request.user, Perm.SUBSCRIBER_EDIT),
            "can_close": has_perm(request.user, Perm.SUBSCRIBER_CLOSE),
            "can_view_personal": has_perm(request.user, Perm.SUBSCRIBER_VIEW_PERSONAL),
        },
    )


@require_POST
@require_perm(Perm.SUBSCRIBER_CLOSE)
def subscriber_close(request, pk):
    subscriber = selectors.get_subscriber(request.user, pk)
    form = CloseForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(_("Say why the account is closed."))
        actions.do_close_subscriber(subscriber, reason=form.cleaned_data["reason"], acting_user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Account closed."))
    return redirect("subscribers:card", pk=subscriber.pk)


@require_POST
@require_perm(Perm.SUBSCRIBER_CLOSE)
def subscriber_reopen(request, pk):
    subscriber = selectors.get_subscriber(request.user, pk)
    try:
        actions.do_reopen_subscriber(subscriber, reason=request.POST.get("reason", ""), acting_user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Account reopened."))
    return redirect("subscribers:card", pk=subscriber.pk)


# --- card panels: each renders itself, and its HTMX form posts back to re-render only the panel --------


def _panel_response(request, subscriber, name: str, form=None, status: int = 200):
    panel = next(p for p in panels_for(request.user) if p.name == name)
    overrides = {"form": form} if form is not None else {}
    return HttpResponse(render_panel(request, subscriber, panel, **overrides), status=status)


def _panel_post(request, pk, *, name: str, form_class, perm: Perm, do):
    check_perm(request.user, perm)
    subscriber = selectors.get_subscriber(request.user, pk)
    form = form_class(request.POST)
    status = 200
    if form.is_valid():
        try:
            do(subscriber, form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
            status = 422
        else:
            form = None
    else:
        status = 422
    if not request.htmx:
        if status != 200:
            messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + f"#panel-{name}")
    return _panel_response(request, subscriber, name, form=form, status=status)


@require_POST
@login_required
def contact_add(request, pk):
    return _panel_post(
        request,
        pk,
        name="contacts",
        form_class=ContactForm,
        perm=Perm.SUBSCRIBER_EDIT,
        do=lambda s, d: actions.do_add_contact(s, acting_user=request.user, **d),
    )


@require_POST
@login_required
def contact_remove(request, pk, contact_pk):
    check_perm(request.user, Perm.SUBSCRIBER_EDIT)
    subscriber = selectors.get_subscriber(request.user, pk)
    actions.do_remove_contact(get_object_or_404(subscriber.contacts, pk=contact_pk), acting_user=request.user)
    if request.htmx:
        return _panel_response(request, subscriber, "contacts")
    return redirect("subscribers:card", pk=subscriber.pk)


@require_POST
@login_required
def address_add(request, pk):
    return _panel_post(
        request,
        pk,
        name="addresses",
        form_class=AddressForm,
        perm=Perm.SUBSCRIBER_EDIT,
        do=lambda s, d: actions.do_add_address(s, data=actions.AddressData(**d), acting_user=request.user),
    )


@require_POST
@login_required
def address_remove(request, pk, address_pk):
    check_perm(request.user, Perm.SUBSCRIBER_EDIT)
    subscriber = selectors.get_subscriber(request.user, pk)
    actions.do_remove_address(get_object_or_404(subscriber.addresses, pk=address_pk), acting_user=request.user)
    if request.htmx:
        return _panel_response(request, subscriber, "addresses")
    return redirect("subscribers:card", pk=subscriber.pk)


@require_POST
@login_required
def note_add(request, pk):
    return _panel_post(
        request,
        pk,
        name="notes",
        form_class=NoteForm,
        perm=Perm.NOTE_ADD,
        do=lambda s, d: actions.do_add_note(s, acting_user=request.user, **d),
    )


@require_POST
@login_required
def connection_event_add(request, pk):
    return _panel_post(
        request,
        pk,
        name="connection",
        form_class=ConnectionEventForm,
        perm=Perm.NOTE_ADD,
        do=lambda s, d: actions.do_add_connection_event(s, acting_user=request.user, **d),
    )


@require_POST
@login_required
def equipment_assign(request, pk):
    return _panel_post(
        request,
        pk,
        name="equipment",
        form_class=EquipmentAssignForm,
        perm=Perm.EQUIPMENT_MANAGE,
        do=lambda s, d: actions.do_install_equipment(s, acting_user=request.user, **d),
    )


@require_POST
@login_required
def equipment_return(request, pk, assignment_pk):
    check_perm(request.user, Perm.EQUIPMENT_MANAGE)
    subscriber = selectors.get_subscriber(request.user, pk)
    assignment = get_object_or_404(subscriber.equipment_assignments, pk=assignment_pk)
    try:
        actions.do_return_equipment(assignment, acting_user=request.user, faulty=request.POST.get("faulty") == "1")
    except ValidationError as exc:
        return HttpResponse(" ".join(exc.messages), status=422)
    if request.htmx:
        return _panel_response(request, subscriber, "equipment")
    return redirect("subscribers:card", pk=subscriber.pk)


# --- the panels this app contributes -------------------------------------------------------------------


def _can(request, perm: Perm) -> bool:
    return has_perm(request.user, perm)


register_panel(
    Panel(
        "contacts",
        gettext_lazy("Contacts"),
        "subscribers/panels/contacts.html",
        10,
        lambda request, subscriber: {
            "contacts": list(subscriber.contacts.all()),
            "form": ContactForm(),
            "can_write": _can(request, Perm.SUBSCRIBER_EDIT),
        },
    )
)
register_panel(
    Panel(
        "addresses",
        gettext_lazy("Addresses"),
        "subscribers/panels/addresses.html",
        20,
        lambda request, subscriber: {
            "addresses": list(subscriber.addresses.all()),
            "form": AddressForm(),
            "can_write": _can(request, Perm.SUBSCRIBER_EDIT),
        },
    )
)
register_panel(
    Panel(
        "equipment",
        gettext_lazy("Equipment"),
        "subscribers/panels/equipment.html",
        30,
        lambda request, subscriber: {
            "history": selectors.equipment_history(subscriber),
            "form": EquipmentAssignForm(),
            "can_write": _can(request, Perm.EQUIPMENT_MANAGE),
        },
    )
)
register_panel(
    Panel(
        "connection",
        gettext_lazy("Connection history"),
        "subscribers/panels/connection.html",
        40,
        lambda request, subscriber: {
            "events": list(subscriber.connection_events.select_related("created_by")[:50]),
            "form": ConnectionEventForm(),
            "can_write": _can(request, Perm.NOTE_ADD),
        },
    )
)


def notes_context(request, subscriber, limit=None) -> dict:
    lines = Lines.asked(limit, default=NOTE_LINES)
    return {
        "notes": list(subscriber.notes.select_related("author")[: lines.shown]),
        "limit": lines.shown,
        "more": lines.more,
        "form": NoteForm(),
        "can_write": _can(request, Perm.NOTE_ADD),
    }


NOTES_PANEL = register_panel(Panel("notes", gettext_lazy("Notes"), "subscribers/panels/notes.html", 50, notes_context))
HISTORY_LINES = 20
NOTE_LINES = 20


def history_context(request, subscriber, limit=None) -> dict:
    lines = Lines.asked(limit, default=HISTORY_LINES)
    return {"lines": history_lines(subscriber, limit=lines.shown), "limit": lines.shown, "more": lines.more}


HISTORY_PANEL = register_panel(
    Panel(
        "history",
        gettext_lazy("Change history"),
        "subscribers/panels/history.html",
        90,
        history_context,
        permission=Perm.AUDIT_VIEW,
    )
)


@require_perm(Perm.AUDIT_VIEW)
def history_panel(request, pk):
    """The history panel with more lines ("show more"); without HTMX, the card."""
    return _more_lines(request, pk, HISTORY_PANEL, history_context)


@require_perm(Perm.SUBSCRIBER_VIEW)
def notes_panel(request, pk):
    return _more_lines(request, pk, NOTES_PANEL, notes_context)


def _more_lines(request, pk, panel: Panel, context):
    subscriber = selectors.get_subscriber(request.user, pk)
    if not request.htmx:
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + f"#panel-{panel.name}")
    data = context(request, subscriber, request.GET.get("limit"))
    return render(request, panel.template, {"subscriber": subscriber, "panel": panel, **data})
