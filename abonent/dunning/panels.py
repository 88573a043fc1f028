"""What this app adds to the subscriber console: the access-state badge in the card's header, the "Access" panel
of the card, and the "Access" column and filter of the subscriber list. The subscribers app knows none of this:
it renders what is registered (``subscribers.extensions``, ``subscribers.panels``)."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.extensions import Badge, ListExtension, register_badge, register_list_extension
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors
from .forms import ReasonForm, SubscriberExemptionForm
from .models import STAFF_STATES, AccessState, AccessStateKind

State = AccessStateKind


def exemptions_of(subscriber) -> list:
    exemptions = getattr(subscriber, "_access_exemptions", None)
    if exemptions is None:
        exemptions = subscriber._access_exemptions = selectors.subscriber_exemptions(subscriber)
    return exemptions


def summary_of(subscriber) -> selectors.AccessSummary:
    """Read once per request and subscriber: the badge and the panel both show it (two queries, with the
    subscriber's exemptions)."""
    summary = getattr(subscriber, "_access_summary", None)
    if summary is None:
        summary = subscriber._access_summary = selectors.access_summary(subscriber, exemptions_of(subscriber))
    return summary


def render_badge(request, subscriber):
    if subscriber.is_closed:
        return None
    return render_to_string("dunning/_badge.html", {"access": summary_of(subscriber)}, request=request)


def _with_status(exemption) -> tuple:
    status = selectors.exemption_status(exemption)
    return exemption, status, selectors.ExemptionStatus(status).label


def panel_context(request, subscriber, **forms) -> dict:
    access = summary_of(subscriber)
    can_manage = has_perm(request.user, Perm.DUNNING_MANAGE)
    can_terminate = has_perm(request.user, Perm.DUNNING_TERMINATE)
    return {
        "access": access,
        "transitions": selectors.transitions_of(subscriber.pk, limit=10),
        "exemptions": [_with_status(e) for e in exemptions_of(subscriber)],
        "can_block": can_manage and access.state not in STAFF_STATES,
        "can_unblock": can_manage and access.state == State.BLOCKED,
        "can_terminate": can_terminate and access.state != State.TERMINATED,
        "can_reinstate": can_terminate and access.state == State.TERMINATED,
        "can_manage": can_manage,
        "reason_form": forms.get("reason_form") or ReasonForm(),
        "exemption_form": forms.get("exemption_form") or SubscriberExemptionForm(),
        "failed": forms.get("failed", ""),
    }


# --- the list ------------------------------------------------------------------------------------------------


def _annotate(qs):
    row = AccessState.objects.filter(subscriber_id=OuterRef("pk"))
    return qs.annotate(
        access_state_value=Subquery(row.values("state")[:1]), access_owed=Subquery(row.values("owed")[:1])
    )


def _filter(qs, value: str):
    if value not in State.values:
        return qs
    if value == State.ACTIVE:  # no row yet is active too
        return qs.exclude(pk__in=AccessState.objects.exclude(state=State.ACTIVE).values("subscriber_id"))
    return qs.filter(pk__in=AccessState.objects.filter(state=value).values("subscriber_id"))


def _cell(subscriber):
    state = getattr(subscriber, "access_state_value", None) or State.ACTIVE
    context = {
        "state": state,
        "label": State(state).label,
        "colour": selectors.STATE_COLOURS.get(state, "secondary"),
        "owed": getattr(subscriber, "access_owed", None),
        "closed": subscriber.is_closed,
    }
    return render_to_string("dunning/_state_cell.html", context)


# Everyone who opens the card sees the access state (what the NAS enforces): without it the card said the plain
# "Active" of an open account to an engineer looking at a debtor sent to the payment page. The panel, with its
# history and exemptions, stays with DUNNING_VIEW.
register_badge(Badge("access", render_badge, permission=None, replaces_status=True))
register_panel(
    Panel("access", _("Access"), "dunning/panels/access.html", 5, panel_context, permission=Perm.DUNNING_VIEW)
)
register_list_extension(
    ListExtension(
        name="access",
        label=_("Access"),
        annotate=_annotate,
        filter=_filter,
        choices=lambda: list(State.choices),
        cell=_cell,
        permission=Perm.DUNNING_VIEW,
        any_label=_("Any access"),
        replaces_status=True,
    )
)
register_action_labels(
    {
        "dunning.block": _("Access blocked by staff"),
        "dunning.unblock": _("Access unblocked"),
        "dunning.terminate": _("Access terminated"),
        "dunning.reinstate": _("Access reinstated"),
        "dunning.exemption_create": _("Exemption from blocking added"),
        "dunning.exemption_revoke": _("Exemption from blocking revoked"),
        "dunning.rule_save": _("Dunning rule saved"),
        "dunning.rule_delete": _("Dunning rule deleted"),
    }
)
