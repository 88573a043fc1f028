"""The subscriber list's export and bulk actions. Thin: parse the selection and the form, check access, count with
the rules (the preview), confirm through the action, run it here when small or leave it to the worker, render."""

from __future__ import annotations

import hashlib
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from abonent.billing.models import Subscription, SubscriptionStatus
from abonent.core import audit
from abonent.core.listing import MAX_EXPORT_ROWS, MONEY_FORMAT, Column, export_response
from abonent.core.money import ZERO
from abonent.dunning.models import AccessStateKind
from abonent.staff.permissions import Perm, allowed_branch_ids, require_perm
from abonent.subscribers.models import ContactKind, ContactPoint

from . import actions, rules
from .forms import BulkActionForm
from .models import BulkAction, BulkKind, ItemOutcome, SkipReason
from .selection import Selection, list_filter, matching

# --- export ----------------------------------------------------------------------------------------------------


def _phone(subscriber) -> str:
    return subscriber.phones[0].value if subscriber.phones else ""


def _address(subscriber) -> str:
    addresses = list(subscriber.addresses.all())
    return addresses[0].as_text() if addresses else ""


def _plans(subscriber) -> str:
    return ", ".join(s.plan.name for s in subscriber.live_subscriptions)


def _balance(subscriber):
    # No ledger account yet (nothing ever posted): a balance of zero.
    account = getattr(subscriber, "ledger_account", None)
    return account.balance if account is not None else ZERO


def _access(subscriber) -> str:
    state = getattr(subscriber, "access_state", None)
    return str(AccessStateKind(state.state).label) if state is not None else str(AccessStateKind.ACTIVE.label)


# No passport, birth date, INN or contract: the list as an operator works it, not the personal file (152-FZ).
EXPORT_COLUMNS = [
    Column(gettext_lazy("Account"), lambda s: s.account_number),
    Column(gettext_lazy("Name"), lambda s: s.display_name),
    Column(gettext_lazy("Phone"), _phone),
    Column(gettext_lazy("Address"), _address),
    Column(gettext_lazy("Plan"), _plans),
    Column(gettext_lazy("Balance"), _balance, MONEY_FORMAT),
    Column(gettext_lazy("Access"), _access),
]


@require_GET
@require_perm(Perm.SUBSCRIBER_EXPORT)
def export(request):
    """The subscribers the list's filter matches, in the list's order, as CSV or XLSX; one audit record of who took
    which filter and how many rows."""
    fmt = request.GET.get("format", "")
    query = list_filter(request.GET.urlencode())
    qs = matching(request.user, query)
    rows = min(qs.count(), MAX_EXPORT_ROWS)
    if fmt in ("csv", "xlsx"):
        audit.record(
            actor=request.user,
            action="subscribers.exported",
            obj=request.user,
            after={"filter": query, "rows": rows, "format": fmt, "columns": [str(c.title) for c in EXPORT_COLUMNS]},
        )
    qs = (
        qs.select_related("ledger_account", "access_state")
        .prefetch_related(
            Prefetch(
                "contacts",
                queryset=ContactPoint.objects.filter(kind=ContactKind.PHONE).order_by("-is_primary", "id"),
                to_attr="phones",
            ),
            "addresses",
            Prefetch(
                "subscriptions",
                queryset=Subscription.objects.exclude(status=SubscriptionStatus.TERMINATED)
                .select_related("plan")
                .order_by("id"),
                to_attr="live_subscriptions",
            ),
        )
        .defer("search_text")
        .order_by("display_name", "id")
    )
    return export_response(fmt, "subscribers", EXPORT_COLUMNS, qs.iterator(chunk_size=1000))


# --- bulk actions ------------------------------------------------------------------------------------------------


def _fingerprint(params: rules.Params, selection: Selection) -> str:
    """What the preview was of: a confirmation of other parameters or another selection is previewed again."""
    text = json.dumps([params.kind, params.as_json(), selection.ids, selection.query], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _page(request, selection, form, *, preview=None, fingerprint="", form_key="", status=200, total=None):
    if total is None:
        total = selection.subscribers(request.user).count()
    context = {
        "selection": selection,
        "total": total,
        "form": form,
        "preview": preview,
        "fingerprint": fingerprint,
        "form_key": form_key,
        "list_url": reverse("subscribers:list") + (f"?{selection.query}" if selection.query else ""),
        "max_subscribers": actions.MAX_SUBSCRIBERS,
    }
    return render(request, "bulk/subscribers.html", context, status=status)


@require_POST
@require_perm(Perm.SUBSCRIBER_BULK)
def subscribers(request):
    """Step 1 (``choose``, from the list's bar; ``preview``): the action's form and how many it would touch and skip.
    Step 2 (``confirm``): the action, once per form key."""
    try:
        selection = Selection.from_post(request.POST)
    except ValidationError as exc:
        form = BulkActionForm(request.POST)
        form.is_valid()
        form.add_error(None, exc)
        return _page(request, Selection((), list_filter(request.POST.get("query", ""))), form, status=422, total=0)
    step = request.POST.get("step", "choose")
    if not selection.is_all and not selection.ids:
        messages.warning(request, _("Tick the subscribers first, or choose all that match the filter."))
        return redirect(reverse("subscribers:list") + (f"?{selection.query}" if selection.query else ""))
    if step == "choose":
        form = BulkActionForm(initial={"kind": request.POST.get("kind") or BulkKind.GROUP_ADD, "per_minute": 600})
        return _page(request, selection, form)
    form_key = request.POST.get("form_key", "")
    if step == "confirm" and (done := actions.confirmed_already(form_key, request.user)):
        # Sent again (a double click, a reload): what the first send did stands; nothing is previewed or done again.
        messages.info(request, _("This form was sent already; the action was done once."))
        return redirect("bulk:action", pk=done.pk)
    form = BulkActionForm(request.POST)
    if not form.is_valid():
        return _page(request, selection, form, status=422)
    params = form.params()
    try:
        actions.check_may(request.user, params.kind)
    except PermissionDenied:
        form.add_error("kind", ValidationError(_("You may not do this action."), code="forbidden"))
        return _page(request, selection, form, status=403)
    fingerprint = _fingerprint(params, selection)
    if step == "confirm":
        try:
            kept = actions.previewed(form_key, request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
            return _page(request, selection, form, status=422)
        if kept.fingerprint == fingerprint and request.POST.get("fingerprint") == fingerprint:
            return _confirm(request, params, selection, form, kept)
        messages.warning(request, _("The action or the selection changed: check the new preview and confirm."))
    preview, kept = actions.do_preview_bulk_action(
        params=params, selection=selection, fingerprint=fingerprint, acting_user=request.user
    )
    if kept is None:
        if preview.total > actions.MAX_SUBSCRIBERS:
            problem = _("More than %(limit)s subscribers: narrow the filter.") % {"limit": actions.MAX_SUBSCRIBERS}
        else:
            problem = _("The action would change nobody of these subscribers.")
        form.add_error(None, ValidationError(problem, code="bulk_nothing"))
        return _page(request, selection, form, preview=preview, status=422, total=preview.total)
    return _page(
        request, selection, form, preview=preview, fingerprint=fingerprint, form_key=kept.form_key, total=preview.total
    )


def _confirm(request, params, selection, form, kept):
    """Step 2: the action over the set the preview ``kept``, run here when small."""
    try:
        action, created = actions.do_confirm_bulk_action(
            params=params,
            selection=selection,
            kept=kept,
            acting_user=request.user,
            reason=form.cleaned_data.get("reason") or "",
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return _page(request, selection, form, preview=rules.Preview.from_json(kept.preview), status=422)
    if not created:
        messages.info(request, _("This form was sent already; the action was done once."))
    elif actions.runs_inline(action):
        actions.run_bulk_action(action.pk)
    return redirect("bulk:action", pk=action.pk)


def _visible_action(user, pk: int) -> BulkAction:
    """One's own actions; another's only for a user without a branch limit (it may hold any branch's subscribers)."""
    action = BulkAction.objects.select_related("created_by", "bulk_message").filter(pk=pk).first()
    if action is None or (action.created_by_id != user.pk and allowed_branch_ids(user) is not None):
        raise Http404("no such bulk action")
    return action


@require_GET
@require_perm(Perm.SUBSCRIBER_BULK)
def action(request, pk: int):
    action = _visible_action(request.user, pk)
    counts = actions.outcome_counts(action)
    skipped = [
        (reason, SkipReason(reason).label, n)
        for key, n in sorted(counts.items())
        if key.startswith("skipped:") and (reason := key.split(":", 1)[1])
    ]
    params = rules.Params.from_json(action.kind, action.params)
    failures = list(
        action.items.filter(outcome__in=[ItemOutcome.FAILED, ItemOutcome.SKIPPED], reason__in=["", SkipReason.REFUSED])
        .exclude(detail="")
        .select_related("subscriber")
        .order_by("pk")[:50]
    )
    context = {
        "action": action,
        "done": counts.get(ItemOutcome.DONE, 0),
        "failed": counts.get(ItemOutcome.FAILED, 0),
        "pending": counts.get(ItemOutcome.PENDING, 0),
        "skipped": skipped,
        "skipped_total": sum(n for _r, _l, n in skipped),
        "group": params.group,
        "plan": params.plan,
        "params": params,
        "failures": failures,
        "list_url": reverse("subscribers:list") + (f"?{action.query}" if action.query else ""),
        "working": action.status in ("queued", "running"),
    }
    return render(request, "bulk/action.html", context)
