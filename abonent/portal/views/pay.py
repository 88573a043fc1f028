"""Pay: the payment form with the suggested amount, a payment's own page (the gateway returns the payer there),
autopay with the saved cards, receipts with their fiscal data, and the statement of account.

Every object taken by id is the signed-in subscriber's (``access.own``: 404 otherwise, before anything else is
done, whatever the method). No view holds a transaction across a call to the gateway.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import re
from urllib.parse import urlencode

import segno
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import formats
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from abonent.billing.calculations import add_months
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.core.forms import apply_action_errors
from abonent.payments.actions import do_disable_autopay, do_sync_checkout, do_unlink_method_and_stop_autopay
from abonent.payments.gateways import GatewayError
from abonent.payments.models import Checkout, CheckoutStatus, Payment, SavedMethod
from abonent.payments.selectors.autopay import attempts_of, autopay_of, methods_of

from .. import pay_data
from ..access import own
from ..forms.pay import AutopayForm, PayForm, StatementForm, new_key
from ..pay_actions import TooManyCheckouts, do_enable_autopay_with_consent, start_payment

logger = logging.getLogger(__name__)
# The status page polls while a payment is pending, for this long; then the subscriber reloads by hand.
POLL_FOR = dt.timedelta(minutes=30)
_REF = re.compile(r"[0-9a-f]{64}")


def qr_svg(text: str, label: str) -> str:
    """``text`` as a QR code, inline SVG (no script, no request): an SBP payment link, a receipt's FNS check."""
    code = segno.make(text, error="m")
    svg = code.svg_inline(scale=4, border=2, omitsize=True, dark="#000", light="#fff", svgclass="portal-qr-code")
    return format_html('<figure class="portal-qr m-0" role="img" aria-label="{}">{}</figure>', label, mark_safe(svg))  # noqa: S308 - segno's own markup


# --- Paying ------------------------------------------------------------------------------------------------------


def pay(request):
    subscriber = request.subscriber
    suggestion = pay_data.suggested_amount(subscriber)
    if request.method == "POST":
        form = PayForm(request.POST)
        status = 422
        if form.is_valid():
            try:
                checkout = _start(request, form)
            except TooManyCheckouts as exc:
                form.add_error(None, exc.message)
                status = 429
            else:
                if checkout is not None:
                    return _after_start(checkout)
    else:
        form = PayForm(initial={"amount": _prefill(request, suggestion)})
        status = 200
    return render(
        request,
        "portal/pay.html",
        {
            "form": form,
            "suggestion": suggestion,
            "available": pay_data.online_payments_available(),
            "consent_text": pay_data.save_consent_text(subscriber),
            "limit": pay_data.online_payment_max(),
            "recent": pay_data.recent_checkouts(subscriber),
        },
        status=status,
    )


def _prefill(request, suggestion):
    """``?amount=`` from the home page's "pay … to restore" when it is a valid amount, else the suggestion."""
    probe = PayForm({"amount": request.GET.get("amount", ""), "method_type": "bank_card", "key": new_key()})
    if request.GET.get("amount") and probe.is_valid():
        return probe.cleaned_data["amount"]
    return suggestion.amount if suggestion.amount > 0 else None


def _start(request, form: PayForm) -> Checkout | None:
    data = form.cleaned_data
    try:
        return start_payment(
            request,
            amount=data["amount"],
            method_type=data["method_type"],
            save_method=data["save_method"],
            consent_text=pay_data.save_consent_text(request.subscriber),
            one_time_key=data["key"],
            consent_source="portal",
        )
    except ValidationError as exc:
        if getattr(exc, "code", None) == "idempotency_key_reused":
            # This form was sent before with another amount or method (back, edit, resubmit): that payment stands;
            # this one needs a key of its own, which the subscriber confirms by sending again.
            form.data = form.data.copy()
            form.data["key"] = new_key()
            form.add_error(None, _("This form was already sent with other details. Check them and send it again."))
        else:
            apply_action_errors(form, exc, {"method_type": "method_type", "amount": "amount"})
        return None


def _after_start(checkout: Checkout):
    """To the gateway's page to pay by card; otherwise (SBP's QR, a refusal, a gateway that did not answer yet)
    to the payment's own page, which shows what to do next."""
    url = pay_data.safe_link(checkout.confirmation_url)
    if checkout.status == CheckoutStatus.PENDING and checkout.method_type != "sbp" and url:
        # Through the payment's own page, which sends the browser on (pay.js): browsers check the CSP's
        # ``form-action 'self'`` on a redirect's target too, so answering the form with a redirect to the gateway's
        # site was blocked and "Pay" by card went nowhere.
        return redirect(reverse("portal:pay_status", args=[checkout.pk]) + "?go=1")
    return redirect("portal:pay_status", checkout_id=checkout.pk)


def pay_return(request, ref: str):
    """The gateway's return address (``portal:pay_return``): finds the subscriber's checkout by its key."""
    if not _REF.fullmatch(ref):
        raise Http404
    checkout = own(Checkout.objects, request, key=pay_data.checkout_key(request.subscriber, ref))
    return redirect("portal:pay_status", checkout_id=checkout.pk)


def pay_status(request, checkout_id: int):
    checkout = own(Checkout.objects, request, pk=checkout_id)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    if pay_data.needs_sync(checkout):
        try:
            checkout = do_sync_checkout(checkout)
        except (GatewayError, DatabaseError, ValidationError) as exc:
            # The gateway (or the intake) could not settle it now: the page says "waiting", the worker goes on.
            logger.warning("portal: checkout %s not synced: %s", checkout.pk, exc)
            checkout.refresh_from_db()
    context = {
        "checkout": checkout,
        "polling": checkout.status == CheckoutStatus.PENDING and clock.now() - checkout.created_at < POLL_FOR,
    }
    if checkout.status == CheckoutStatus.SUCCEEDED:
        context["balance"] = get_balance(request.subscriber).balance
    elif checkout.status == CheckoutStatus.FAILED:
        context["reason"] = pay_data.failure_reason(checkout)
    elif checkout.qr_payload:
        context["qr"] = qr_svg(checkout.qr_payload, _("QR code to pay by SBP"))
        context["qr_link"] = pay_data.safe_link(checkout.qr_payload)
    else:
        context["pay_link"] = pay_data.safe_link(checkout.confirmation_url)
        context["forward"] = request.GET.get("go") == "1"  # just started from the form: on to the gateway
    template = "portal/pay_status_card.html" if request.headers.get("HX-Request") else "portal/pay_status.html"
    return render(request, template, context)


# --- Autopay -----------------------------------------------------------------------------------------------------


def autopay(request):
    subscriber = request.subscriber
    methods = methods_of(subscriber, active_only=True)
    plan = autopay_of(subscriber)
    consent_text = pay_data.autopay_consent_text(subscriber)
    if request.method == "POST":
        form = AutopayForm(request.POST, methods=methods, consent_text=consent_text)
        if form.is_valid():
            data = form.cleaned_data
            try:
                do_enable_autopay_with_consent(
                    subscriber,
                    consent_text=consent_text,
                    consent_source="portal",
                    method=data["method"],
                    mode=data["mode"],
                    debit_day=data["debit_day"],
                    amount_mode=data["amount_mode"],
                    fixed_amount=data["fixed_amount"],
                    max_amount=data["max_amount"],
                )
            except ValidationError as exc:
                apply_action_errors(form, exc)
            else:
                messages.success(request, _("Autopay is on."))
                return redirect("portal:pay_autopay")
        status = 422
    else:
        initial = {"mode": "day", "debit_day": 1, "amount_mode": "cover"}
        if plan is not None:
            initial = {
                "method": plan.method_id,
                "mode": plan.mode,
                "debit_day": plan.debit_day,
                "amount_mode": plan.amount_mode,
                "fixed_amount": plan.fixed_amount,
                "max_amount": plan.max_amount,
            }
        form = AutopayForm(initial=initial, methods=methods, consent_text=consent_text)
        status = 200
    return render(
        request,
        "portal/autopay.html",
        {
            "form": form,
            "plan": plan,
            "methods": list(methods),
            "attempts": [(a, pay_data.decline_reason(a.decline_code)) for a in attempts_of(subscriber)],
        },
        status=status,
    )


def autopay_off(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    plan = do_disable_autopay(request.subscriber, acting_user=None, reason=_("turned off by the subscriber"))
    if plan is not None:
        messages.success(request, _("Autopay is off."))
    return redirect("portal:pay_autopay")


def method_unlink(request, method_id: int):
    method = own(SavedMethod.objects, request, pk=method_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    do_unlink_method_and_stop_autopay(method, acting_user=None, reason=_("unlinked by the subscriber"))
    messages.success(request, _("%(method)s is unlinked.") % {"method": method.title or _("The card")})
    return redirect("portal:pay_autopay")


# --- Receipts ----------------------------------------------------------------------------------------------------


def receipts(request):
    try:
        page = pay_data.payments_with_receipts(request.subscriber, cursor=request.GET.get("cursor", "")[:200])
    except ValidationError:
        page = pay_data.payments_with_receipts(request.subscriber)
    rows = [(p, pay_data.receipt_state(p.receipts.all())) for p in page.payments]
    return render(
        request,
        "portal/receipts.html",
        {"rows": rows, "next_cursor": page.next_cursor, "states": pay_data.RECEIPT_STATES},
    )


def receipt(request, payment_id: int):
    payment = own(Payment.objects, request, pk=payment_id)
    items = []
    for fiscal in pay_data.payment_receipts(payment):
        qr = fiscal.qr_text
        items.append(
            {
                "receipt": fiscal,
                "qr": qr_svg(qr, _("QR code of the receipt for the FNS check")) if qr else "",
                "check_url": pay_data.safe_link(fiscal.check_url),
                "fns_site": pay_data.fns_site_url(fiscal),
            }
        )
    return render(
        request,
        "portal/receipt.html",
        {
            "payment": payment,
            "items": items,
            "state": pay_data.RECEIPT_STATES[pay_data.receipt_state([i["receipt"] for i in items])],
        },
    )


# --- The statement -----------------------------------------------------------------------------------------------


def _statement_form(request) -> StatementForm:
    today = clock.today()
    start = add_months(today.replace(day=1), -2)
    data = {"date_from": request.GET.get("from") or start.isoformat(), "date_to": request.GET.get("to") or str(today)}
    return StatementForm(data)


def _periods(today: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    month = today.replace(day=1)
    return [
        (_("This month"), month, today),
        (_("Last month"), add_months(month, -1), month - dt.timedelta(days=1)),
        (_("Three months"), add_months(month, -2), today),
        (_("This year"), month.replace(month=1), today),
        (_("Last year"), dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31)),
    ]


def statement(request):
    form = _statement_form(request)
    context = {"form": form, "periods": _periods(clock.today())}
    if not form.is_valid():
        return render(request, "portal/statement.html", context, status=400)
    data = form.cleaned_data
    context["statement"] = pay_data.statement(request.subscriber, data["date_from"], data["date_to"])
    # isoformat, not %Y: strftime does not pad a year before 1000 ("1-01-01"), which the CSV's form refuses.
    context["csv_query"] = urlencode({"from": data["date_from"].isoformat(), "to": data["date_to"].isoformat()})
    return render(request, "portal/statement.html", context)


def statement_csv(request):
    form = _statement_form(request)
    if not form.is_valid():
        return render(request, "portal/statement.html", {"form": form, "periods": _periods(clock.today())}, status=400)
    start, end = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    account = pay_data.statement(request.subscriber, start, end)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    compact = lambda day: day.isoformat().replace("-", "")  # noqa: E731 - 20261112; a year before 1000 padded too
    name = f"statement-{request.subscriber.account_number}-{compact(start)}-{compact(end)}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    # A BOM and semicolons: what a spreadsheet in a Russian locale opens as columns, Cyrillic intact.
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";")
    mark = formats.get_format("DECIMAL_SEPARATOR")
    number = lambda value: f"{value:.2f}".replace(".", mark)  # noqa: E731 - the locale's mark, no grouping
    writer.writerow([_("Date"), _("Operation"), _("Description"), _("Amount"), _("Balance after")])
    writer.writerow([start.isoformat(), _("Opening balance"), "", "", number(account.opening)])
    for line in account.lines:
        writer.writerow(
            [line.date.isoformat(), _cell(line.kind_label), _cell(line.description), number(line.amount),
             number(line.balance_after)]
        )  # fmt: skip
    writer.writerow([end.isoformat(), _("Closing balance"), "", "", number(account.closing)])
    return response


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (CSV injection: =, +, -, @ and a tab or CR first)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


urlpatterns = [
    path("pay/", pay, name="pay"),
    path("pay/<int:checkout_id>/", pay_status, name="pay_status"),
    path("pay/return/<str:ref>/", pay_return, name="pay_return"),
    path("pay/autopay/", autopay, name="pay_autopay"),
    path("pay/autopay/off/", autopay_off, name="pay_autopay_off"),
    path("pay/autopay/methods/<int:method_id>/unlink/", method_unlink, name="pay_method_unlink"),
    path("pay/receipts/", receipts, name="pay_receipts"),
    path("pay/receipts/<int:payment_id>/", receipt, name="pay_receipt"),
    path("pay/statement/", statement, name="pay_statement"),
    path("pay/statement.csv", statement_csv, name="pay_statement_csv"),
]
