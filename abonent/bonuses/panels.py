"""The subscriber card's "Bonuses" panel (``bonus.view``): the points, their latest movements, who referred the
subscriber; with ``bonus.manage`` forms to spend points on services and to record the referrer."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.core import clock
from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors
from .forms import ReferrerForm, SpendForm
from .models import Referral


def bonuses_context(request, subscriber, form=None, referrer_form=None, **_ignored) -> dict:
    can_write = has_perm(request.user, Perm.BONUS_MANAGE)
    return {
        "points": selectors.spendable_of(subscriber.pk, clock.today()),
        "entries": list(selectors.history_of(subscriber.pk, limit=10)),
        "expiring": selectors.expiring_soon(subscriber.pk, clock.today()),
        "referral": Referral.objects.filter(referred=subscriber).select_related("referrer").first(),
        "can_write": can_write,
        "form": (form or SpendForm(auto_id="bonus-%s")) if can_write else None,
        "referrer_form": (referrer_form or ReferrerForm(auto_id="referrer-%s")) if can_write else None,
    }


PANEL = register_panel(
    Panel("bonuses", _("Bonuses"), "bonuses/panels/bonuses.html", 32, bonuses_context, Perm.BONUS_VIEW)
)

register_action_labels(
    {
        "bonuses.spent": _("Bonus points spent"),
        "bonuses.referrer_set": _("Referrer recorded"),
        "bonuses.rules_changed": _("Bonus rules changed"),
    },
    fields={"points": _("points"), "referrer": _("referred by"), "since": _("since")},
)
