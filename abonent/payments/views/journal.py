"""The payments console: the journal, a payment's card with its forms, the suspense queue, open conflicts.
Thin: parse, check access (permission 403, another branch's payment 404), call an action or selector, render."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.core.listing import MONEY_FORMAT, Column, Sorting, export_response, keyset_page, query_without
from abonent.core.money import format_money
from abonent.staff.permissions import Perm, check_perm, has_perm, require_perm
from abonent.subscribers.selectors import subscriber_by_account, visible_subscribers

from .. import actions, selectors
from ..cards import render_payment_sections
from ..forms import AssignForm, JournalFilterForm, ReasonForm, RefundForm, ResolveForm
from ..models import PaymentStatus
from .common import answers_busy, back_to, run_once

PAGE_SIZE = 50
# The journal's sorts (core.listing.Sorting): newest first by default; by amount for "the biggest payments".
JOURNAL_SORTING = Sorting({"received": ("received_at", "id"), "amount": ("amount", "id")}, default="-received")


def _filters(request) -> tuple[JournalFilterForm, dict, selectors.JournalFilters]:
    form = JournalFilterForm(request.GET or None, channels=selectors.channels_in_use())
    data = {}
    if form.is_bound:
        form.is_valid()  # the filters that parse apply; one that does not is shown with its error and left out
        data = form.cleaned_data
    return (
        form,
        data,
        selectors.JournalFilters(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            channel=data.get("channel") or "",
            method=data.get("method") or "",
            status=data.get("status") or "",
            cashier_id=data["cashier"].pk if data.get("cashier") else None,
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            query=data.get("q") or "",
        ),
    )


@require_perm(Perm.PAYMENT_VIEW)
def journal(request):
    form, _data, filters = _filters(request)
    sort, order = JOURNAL_SORTING.choose(request.GET.get("sort"))
    qs = selectors.journal(request.user, filters)
    totals = selectors.journal_totals(qs)
    page = keyset_page(qs.select_related("subscriber", "taken_by"), ordering=order, cursor=request.GET.get("cursor"))
    context = {
        "form": form,
        "page": page,
        "totals": totals,
        "sort": sort,
        "query_string": query_without(request.GET, "cursor", "format"),
        "sort_query": query_without(request.GET, "cursor", "format", "sort"),
    }
    return render(request, "payments/journal.html", context)


JOURNAL_COLUMNS = [
    Column(gettext_lazy("Number"), lambda p: p.pk),
    Column(gettext_lazy("Received"), lambda p: p.received_at),
    Column(gettext_lazy("Channel"), lambda p: p.channel),
    Column(gettext_lazy("Payment id in the channel"), lambda p: p.external_id),
    Column(gettext_lazy("Method"), lambda p: p.get_method_display()),
    Column(gettext_lazy("Account"), lambda p: p.subscriber.account_number if p.subscriber_id else p.account_ref),
    Column(gettext_lazy("Subscriber / payer"), lambda p: p.subscriber.display_name if p.subscriber_id else p.payer),
    Column(gettext_lazy("Amount"), lambda p: p.amount, MONEY_FORMAT),
    Column(gettext_lazy("Refunded"), lambda p: p.refunded_amount, MONEY_FORMAT),
    Column(gettext_lazy("Status"), lambda p: p.get_status_display()),
    Column(gettext_lazy("Taken by"), lambda p: p.taken_by.get_full_name() if p.taken_by_id else ""),
]


@require_perm(Perm.PAYMENT_VIEW)
def journal_export(request, default_format: str = "xlsx"):
    """The filtered journal in its order as CSV or XLSX (``format``), streamed (core.listing.export_response).
    ``export.csv`` (the old address) answers CSV."""
    _form, _data, filters = _filters(request)
    _sort, order = JOURNAL_SORTING.choose(request.GET.get("sort"))
    qs = selectors.journal(request.user, filters).select_related("subscriber", "taken_by").order_by(*order)
    fmt = request.GET.get("format") or default_format
    return export_response(fmt, "payments", JOURNAL_COLUMNS, qs.iterator(chunk_size=2000))


def journal_csv(request):
    return journal_export(request, default_format="csv")


def _card_forms(request, payment, bound: dict | None = None) -> dict:
    bound = bound or {}
    user = request.user
    forms = {}
    if payment.status == PaymentStatus.CREDITED and payment.refundable > 0 and has_perm(user, Perm.PAYMENT_REFUND):
        forms["refund"] = bound.get("refund") or RefundForm(auto_id="refund-%s", initial={"amount": payment.refundable})
    if actions.can_cancel(user, payment):
        forms["cancel"] = bound.get("cancel") or ReasonForm(auto_id="cancel-%s")
    if payment.status == PaymentStatus.SUSPENSE and has_perm(user, Perm.PAYMENT_TAKE):
        forms["assign"] = bound.get("assign") or AssignForm(auto_id="assign-%s")
    if payment.status == PaymentStatus.SUSPENSE and has_perm(user, Perm.PAYMENT_REFUND):
        forms["return"] = bound.get("return") or ReasonForm(auto_id="return-%s")
    # A form that failed stays on the card even when the payment's state changed meanwhile.
    forms.update({k: v for k, v in bound.items() if k not in forms})
    return forms


def _render_card(request, payment, *, bound: dict | None = None, status: int = 200):
    context = {
        "payment": payment,
        "transactions": selectors.payment_transactions(payment),
        "refunds": list(payment.refunds.select_related("created_by").order_by("created_at", "id")),
        "conflicts": list(payment.conflicts.select_related("resolved_by").order_by("-last_at")),
        "forms": _card_forms(request, payment, bound),
        "sections": render_payment_sections(request, payment),
    }
    return render(request, "payments/card.html", context, status=status)


@require_perm(Perm.PAYMENT_VIEW)
def payment_card(request, pk):
    return _render_card(request, selectors.get_payment(request.user, pk))


def _post(request, pk, *, kind: str, perm: Perm, form_class, do):
    check_perm(request.user, perm)
    payment = selectors.get_payment(request.user, pk)
    form = form_class(request.POST, auto_id=f"{kind}-%s")
    card = reverse("payments:card", args=[payment.pk])
    done = run_once(
        request, form, kind=kind, payment=payment, do=lambda data: do(payment, data), back=back_to(request, card)
    )
    if done is not None:
        return done
    return _render_card(request, payment, bound={kind: form}, status=422)


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_VIEW)
def refund(request, pk):
    def do(payment, data):
        actions.do_refund_payment(
            payment, amount=data["amount"], reason=data["reason"], acting_user=request.user, key=f"form:{data['token']}"
        )
        return _("Refunded %(amount)s.") % {"amount": format_money(data["amount"])}

    return _post(request, pk, kind="refund", perm=Perm.PAYMENT_REFUND, form_class=RefundForm, do=do)


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_VIEW)
def cancel(request, pk):
    def do(payment, data):
        actions.do_cancel_payment(payment, reason=data["reason"], acting_user=request.user)
        return _("Payment cancelled.")

    return _post(request, pk, kind="cancel", perm=Perm.PAYMENT_CANCEL, form_class=ReasonForm, do=do)


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_VIEW)
def assign(request, pk):
    def do(payment, data):
        # Only a subscriber the user can see: another branch's account reads as unknown (nothing confirmed).
        subscriber = subscriber_by_account(data["account"], queryset=visible_subscribers(request.user))
        if subscriber is None:
            raise ValidationError(
                {"account": ValidationError(_("No subscriber you can see has this account."), code="account_unknown")}
            )
        actions.do_assign_payment(payment, subscriber=subscriber, acting_user=request.user, reason=data["reason"])
        return _("Payment credited to %(account)s.") % {"account": subscriber.account_number}

    return _post(request, pk, kind="assign", perm=Perm.PAYMENT_TAKE, form_class=AssignForm, do=do)


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_VIEW)
def return_payment(request, pk):
    def do(payment, data):
        actions.do_return_payment(payment, reason=data["reason"], acting_user=request.user, key=f"form:{data['token']}")
        return _("Payment returned to the payer.")

    return _post(request, pk, kind="return", perm=Perm.PAYMENT_REFUND, form_class=ReasonForm, do=do)


@require_perm(Perm.PAYMENT_VIEW)
def suspense(request):
    page = keyset_page(
        selectors.suspense_queue(request.user).select_related("subscriber"),
        ordering=("-received_at", "-id"),
        cursor=request.GET.get("cursor"),
        size=PAGE_SIZE,
    )
    rows = [
        {
            "payment": p,
            "assign": AssignForm(auto_id=f"assign-{p.pk}-%s") if has_perm(request.user, Perm.PAYMENT_TAKE) else None,
            "return": ReasonForm(auto_id=f"return-{p.pk}-%s") if has_perm(request.user, Perm.PAYMENT_REFUND) else None,
        }
        for p in page
    ]
    return render(request, "payments/suspense.html", {"page": page, "rows": rows, "query_string": ""})


@require_perm(Perm.PAYMENT_VIEW)
def conflicts(request):
    return _conflicts_page(request)


def _conflicts_page(request, bound: dict | None = None, status: int = 200):
    paginator = Paginator(selectors.open_conflicts(request.user), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page") or 1)
    can_resolve = has_perm(request.user, Perm.PAYMENT_TAKE)
    rows = [
        {
            "conflict": c,
            "form": (bound or {}).get(c.pk) or (ResolveForm(auto_id=f"resolve-{c.pk}-%s") if can_resolve else None),
        }
        for c in page
    ]
    return render(request, "payments/conflicts.html", {"page": page, "rows": rows}, status=status)


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_TAKE)
def resolve_conflict(request, pk):
    conflict = selectors.get_conflict(request.user, pk)
    form = ResolveForm(request.POST, auto_id=f"resolve-{conflict.pk}-%s")

    def do(data):
        actions.do_resolve_conflict(conflict, resolution=data["resolution"], acting_user=request.user)
        return _("Conflict settled.")

    done = run_once(request, form, kind="resolve", payment=conflict.payment, do=do, back=reverse("payments:conflicts"))
    if done is not None:
        return done
    return _conflicts_page(request, bound={conflict.pk: form}, status=422)
