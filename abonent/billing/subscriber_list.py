"""What billing adds to the subscriber list: the "Balance" column and the debtors filter. The subscribers app
renders what is registered (``subscribers.extensions``) and knows nothing of the ledger."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from abonent.core.money import format_money
from abonent.staff.permissions import Perm
from abonent.subscribers.extensions import ListExtension, register_list_extension

from .models import AccountKind, LedgerAccount

DEBTORS = "debtors"
PAID_UP = "paid_up"


def _annotate(qs):
    # One probe of the unique index on the account's subscriber per row of the page.
    return qs.annotate(
        ledger_balance=Subquery(LedgerAccount.objects.filter(subscriber_id=OuterRef("pk")).values("balance")[:1])
    )


def _filter(qs, value: str):
    below_zero = LedgerAccount.objects.filter(kind=AccountKind.SUBSCRIBER, balance__lt=0).values("subscriber_id")
    if value == DEBTORS:
        return qs.filter(pk__in=below_zero)
    if value == PAID_UP:  # no account yet is a balance of zero
        return qs.exclude(pk__in=below_zero)
    return qs


def _cell(subscriber):
    balance = getattr(subscriber, "ledger_balance", None)
    if balance is None:
        return mark_safe('<span class="text-secondary">—</span>')
    colour = "text-danger" if balance < 0 else ""
    return format_html('<span class="text-nowrap balance {}">{}</span>', colour, format_money(balance))


register_list_extension(
    ListExtension(
        name="balance",
        label=_("Balance"),
        annotate=_annotate,
        filter=_filter,
        choices=lambda: [(DEBTORS, _("Debtors: below zero")), (PAID_UP, _("Zero or above"))],
        cell=_cell,
        permission=Perm.BILLING_VIEW,
        any_label=_("Any balance"),
    )
)
