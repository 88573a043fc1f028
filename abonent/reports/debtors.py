"""The debtors report: who owes, how much, since when, what dunning did about it, when they last paid.

A debtor is a subscriber whose **balance is below zero** (the money actually owed), not one below the credit
allowance (balance + credit limit + promised payment): a subscriber in credit who is still allowed online owes the
money all the same, and one whose promised payment keeps them online owes it too. The credit limit and dunning's
access state are shown beside the debt, so "owes, but still online" and "owes and blocked" are told apart.

"In debt since" is the receivables ageing's (``receivables.debtors``: dunning's episode, else the ledger walk), so
the two pages agree. The last payment is one probe of the payments' (subscriber, received) index per row shown, so
a page costs what the receivables page costs plus 50 index probes; the bucket totals are the ageing's one pass over
the debtors (a partial scan: only accounts below zero).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.translation import gettext_lazy as _

from abonent.billing.models import LedgerAccount
from abonent.core.forms import ConsoleForm
from abonent.core.listing import MONEY_FORMAT, Column, Sorting
from abonent.core.models import Branch
from abonent.core.money import quantize
from abonent.dunning.models import AccessStateKind
from abonent.payments.models import Payment, PaymentStatus
from abonent.staff.permissions import allowed_branch_ids

from . import receivables

# The largest debt a filter accepts: the balance column's bound (18 digits, 2 places).
MAX_DEBT = Decimal("9999999999999999.99")

SORTING = Sorting(
    {
        "debt": ("balance", "id"),
        "since": ("debt_since", "id"),
        "account": ("subscriber__account_number", "id"),
    },
    default="debt",
)


class DebtorsFilterForm(ConsoleForm):
    branch = forms.ModelChoiceField(
        label=_("Branch"), required=False, queryset=Branch.objects.none(), empty_label=_("All branches")
    )
    access = forms.ChoiceField(
        label=_("Access"), required=False, choices=[("", _("Any access")), *AccessStateKind.choices]
    )
    bucket = forms.ChoiceField(
        label=_("In debt for"),
        required=False,
        choices=[("", _("Any time")), *((b.key, b.label) for b in receivables.BUCKETS)],
    )
    min_debt = forms.DecimalField(
        label=_("Debt from"), required=False, min_value=Decimal("0"), max_value=MAX_DEBT, decimal_places=2
    )
    q = forms.CharField(
        label=_("Account or name"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        branches = Branch.objects.order_by("name")
        ids = allowed_branch_ids(user)
        self.fields["branch"].queryset = branches if ids is None else branches.filter(pk__in=ids)


def matching(user, data: dict, *, today: dt.date) -> QuerySet[LedgerAccount]:
    """The debtors ``user`` may see matching the filters, each with ``debt_since`` and ``access_state``: the rows of
    the page and, summed, its chart (so the chart answers the same question as the table)."""
    qs = receivables.filtered(
        receivables.debtors(user, today=today),
        bucket=data.get("bucket") or "",
        branch_id=data["branch"].pk if data.get("branch") else None,
        query=data.get("q") or "",
        today=today,
    )
    if data.get("access"):
        qs = qs.filter(subscriber__access_state__state=data["access"])
    if data.get("min_debt"):
        qs = qs.filter(balance__lte=-data["min_debt"])
    return qs


def debtors(user, data: dict, *, today: dt.date, using: str) -> QuerySet[LedgerAccount]:
    """``matching``, each with ``last_payment_at`` and ``last_payment_amount`` (``None`` when the subscriber never
    paid)."""
    qs = matching(user, data, today=today)
    last = Payment.objects.filter(subscriber_id=OuterRef("subscriber_id"), status=PaymentStatus.CREDITED).order_by(
        "-received_at", "-id"
    )
    return (
        qs.annotate(
            last_payment_at=Subquery(last.values("received_at")[:1]),
            last_payment_amount=Subquery(last.values("amount")[:1]),
        )
        .select_related("subscriber__branch")
        .using(using)
    )


def decorate(account: LedgerAccount, today: dt.date) -> LedgerAccount:
    """What a row shows beside the account: the debt as a positive amount, days in debt, the access label."""
    account.debt = -account.balance
    if account.last_payment_amount is not None:  # SQLite hands a subquery's decimal back as a number
        account.last_payment_amount = quantize(Decimal(str(account.last_payment_amount)))
    account.days_in_debt = max((today - account.debt_since).days, 0)
    account.since_known = account.debt_since != receivables.before_window(today)
    account.access_label = str(AccessStateKind(account.access_state).label) if account.access_state else ""
    return account


COLUMNS = [
    Column(_("Account"), lambda a: a.subscriber.account_number),
    Column(_("Subscriber"), lambda a: a.subscriber.display_name),
    Column(_("Branch"), lambda a: a.subscriber.branch.name),
    Column(_("Debt"), lambda a: a.debt, MONEY_FORMAT),
    Column(_("Credit limit"), lambda a: a.credit_limit, MONEY_FORMAT),
    Column(_("In debt since"), lambda a: a.debt_since if a.since_known else None),
    Column(_("Days in debt"), lambda a: a.days_in_debt),
    Column(_("Access"), lambda a: a.access_label),
    Column(_("Last payment"), lambda a: a.last_payment_at),
    Column(_("Last payment, amount"), lambda a: a.last_payment_amount, MONEY_FORMAT),
]
