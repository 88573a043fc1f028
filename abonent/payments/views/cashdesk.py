"""The cash desk: find the subscriber by account number, take cash, print the receipt; the cashier's day, its
close and the cash report (a print view). Thin: parse, check access, call an action or selector, render."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.core.company import company_details
from abonent.core.forms import apply_action_errors
from abonent.core.money import format_money
from abonent.staff.models import StaffUser
from abonent.staff.permissions import Perm, has_perm, require_perm
from abonent.subscribers.selectors import get_subscriber, subscriber_by_account, visible_subscribers

from .. import actions, selectors
from ..actions.cashdesk import is_day_closed
from ..forms import AccountLookupForm, CloseDayForm, TakePaymentForm
from ..models import PaymentMethod, PaymentStatus
from ..printing import amount_in_words
from ..selectors.dates import is_sane_day
from .common import answers_busy, run_once


def take_form_for(subscriber, data=None, *, suggested=None) -> TakePaymentForm:
    if data is not None:
        return TakePaymentForm(data, auto_id="take-%s")
    suggested = selectors.suggested_amount(subscriber) if suggested is None else suggested
    return TakePaymentForm(data, auto_id="take-%s", initial={"amount": suggested} if suggested > 0 else {})


def _desk(request, *, lookup=None, subscriber=None, take_form=None, status: int = 200):
    context = {
        "lookup": lookup or AccountLookupForm(auto_id="lookup-%s"),
        "subscriber": subscriber,
        "day_closed": is_day_closed(request.user.pk, clock.today()),
    }
    if subscriber is not None:
        suggested = selectors.suggested_amount(subscriber)
        context.update(
            balance=get_balance(subscriber),
            suggested=suggested,
            address=subscriber.addresses.order_by("id").first(),
            take_form=take_form or take_form_for(subscriber, suggested=suggested),
            recent=selectors.subscriber_payments(subscriber, limit=5),
        )
    return render(request, "payments/cashdesk.html", context, status=status)


@require_perm(Perm.PAYMENT_TAKE)
def cashdesk(request):
    """The cash desk page: an account number typed (or scanned from a receipt) shows whose it is before taking."""
    if "account" not in request.GET:
        return _desk(request)
    lookup = AccountLookupForm(request.GET, auto_id="lookup-%s")
    if not lookup.is_valid():
        return _desk(request, lookup=lookup, status=422)
    subscriber = subscriber_by_account(lookup.cleaned_data["account"], queryset=visible_subscribers(request.user))
    if subscriber is None:
        # Another branch's account reads as unknown: nothing is confirmed about it.
        lookup.add_error("account", ValidationError(_("No subscriber you can see has this account."), code="unknown"))
        return _desk(request, lookup=lookup, status=404)
    return _desk(request, lookup=lookup, subscriber=subscriber)


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_TAKE)
def take(request, subscriber_pk):
    subscriber = get_subscriber(request.user, subscriber_pk)
    form = take_form_for(subscriber, request.POST)
    if form.is_valid():
        try:
            intake = actions.do_take_cash_payment(
                subscriber,
                amount=form.cleaned_data["amount"],
                token=form.cleaned_data["token"],
                acting_user=request.user,
                memo=form.cleaned_data["memo"],
            )
        except ValidationError as exc:
            apply_action_errors(form, exc, {"account": "amount"})
        else:
            return redirect("payments:receipt", pk=intake.payment.pk)
    return _desk(request, subscriber=subscriber, take_form=form, status=422)


@require_perm(Perm.PAYMENT_VIEW)
def receipt(request, pk):
    """The cash receipt, made for printing (the browser's print dialog opens on it)."""
    payment = selectors.get_payment(request.user, pk)
    context = {
        "payment": payment,
        "company": company_details().name,
        "words": amount_in_words(payment.amount),
        "address": payment.subscriber.addresses.order_by("id").first() if payment.subscriber_id else None,
    }
    return render(request, "payments/receipt.html", context)


def _sees_all_reports(user) -> bool:
    # The administrator (the senior cashier's role here): the only role holding refunds.
    return has_perm(user, Perm.PAYMENT_REFUND)


@require_perm(Perm.PAYMENT_TAKE)
def my_day(request):
    return _my_day(request)


def _my_day(request, form=None, status: int = 200):
    today = clock.today()
    context = {
        "today": today,
        "day": selectors.cash_day(request.user.pk, today),
        "totals": selectors.cash_day_totals(request.user.pk, today),
        "form": form or CloseDayForm(auto_id="close-%s"),
        "days": selectors.cash_days(request.user, all_cashiers=False, limit=31),
    }
    return render(request, "payments/my_day.html", context, status=status)


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_TAKE)
def close_day(request):
    form = CloseDayForm(request.POST, auto_id="close-%s")
    today = clock.today()

    def do(_data):
        day = actions.do_close_cash_day(request.user, day=today, acting_user=request.user)
        return _("Cash day closed: %(net)s to hand over.") % {"net": format_money(day.net_total)}

    back = reverse("payments:cash_report", args=[request.user.pk, today.isoformat()])
    done = run_once(request, form, kind="close_day", payment=None, do=do, back=back)
    if done is not None:
        return done
    return _my_day(request, form=form, status=422)


@require_perm(Perm.PAYMENT_VIEW)
def cash_reports(request):
    """Every cashier's days for the administrator; one's own for the others."""
    every = _sees_all_reports(request.user)
    days = selectors.cash_days(request.user, all_cashiers=every, limit=200)
    return render(request, "payments/cash_reports.html", {"days": days, "every": every})


@require_perm(Perm.PAYMENT_VIEW)
def cash_report(request, cashier_pk, date):
    """One cashier's day (a print view): totals by method, payments (cancelled marked), refunds paid out in cash,
    signature lines. The frozen totals of a closed day, the running ones of an open day."""
    if cashier_pk != request.user.pk and not _sees_all_reports(request.user):
        raise Http404
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise Http404 from None
    if not is_sane_day(day):
        raise Http404
    cashier = StaffUser.objects.filter(pk=cashier_pk).first()
    if cashier is None:
        raise Http404
    cash_day = selectors.cash_day(cashier.pk, day)
    totals = selectors.cash_day_totals(cashier.pk, day)
    closed = cash_day is not None and cash_day.is_closed
    # A closed day shows what was counted at the close; an open one what it holds now.
    by_method = (
        {method: Decimal(value) for method, value in cash_day.totals_by_method.items()} if closed else totals.by_method
    )
    context = {
        "cashier": cashier,
        "date": day,
        "cash_day": cash_day,
        "totals": totals,
        "closed": closed,
        "by_method": [(_method_label(method), amount) for method, amount in sorted(by_method.items())],
        "payments": list(selectors.cashier_payments(cashier.pk, day)),
        "refunds": list(selectors.cashier_refunds(cashier.pk, day)),
        "company": company_details().name,
        "cancelled": PaymentStatus.CANCELLED,
        "net_words": amount_in_words(cash_day.net_total if closed else totals.net_total),
    }
    return render(request, "payments/cash_report.html", context)


def _method_label(method: str) -> str:
    return str(PaymentMethod(method).label) if method in PaymentMethod.values else method
