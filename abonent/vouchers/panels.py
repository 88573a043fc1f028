"""The subscriber card's "Prepaid cards" panel (``voucher.view``): cards the subscriber activated and a form to
activate one the subscriber reads out; and the app's audit actions' names in the card's history."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors
from .forms import ActivateForm


def vouchers_context(request, subscriber, form=None, **_ignored) -> dict:
    return {
        "activations": list(selectors.activations_of(subscriber.pk)),
        "form": form or ActivateForm(auto_id="voucher-%s"),
        "can_write": True,
    }


PANEL = register_panel(
    Panel("vouchers", _("Prepaid cards"), "vouchers/panels/vouchers.html", 31, vouchers_context, Perm.VOUCHER_VIEW)
)

register_action_labels(
    {
        "vouchers.activated": _("Prepaid card activated"),
        "vouchers.dealer_created": _("Dealer added"),
        "vouchers.series_created": _("Card series created"),
        "vouchers.sold": _("Cards sold to a dealer"),
        "vouchers.voided": _("Cards void"),
        "vouchers.sheet_printed": _("Card sheet printed"),
    },
    fields={"serial": _("serial number"), "amount": _("amount")},
)
