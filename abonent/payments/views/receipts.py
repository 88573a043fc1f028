"""Fiscal receipts in the console (the section of a payment's card, the list of receipts not done, the retry)
and the provider's callback under ``/pay/``. Thin: parse, check access, call an action or selector, render."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from abonent.staff.permissions import Perm, check_branch, has_perm, require_perm

from .. import fiscal, selectors
from ..actions import receipts as actions
from ..models import FiscalReceipt, Payment, ReceiptStatus

logger = logging.getLogger(__name__)


def payment_receipt_section(request, payment: Payment, *, notice: str = "", error: str = "") -> str:
    """The receipt section of a payment's console card, as HTML (the card registers it)."""
    return render_to_string(
        "payments/_receipt_section.html",
        {
            "payment": payment,
            "receipts": selectors.receipts_of_payment(payment),
            "can_retry": has_perm(request.user, Perm.PAYMENT_SETTINGS),
            "notice": notice,
            "error": error,
        },
        request=request,
    )


@require_perm(Perm.PAYMENT_VIEW)
def receipt_list(request):
    status = request.GET.get("status", "")
    receipts = selectors.receipts_not_done(request.user, status=status)[:500]
    return render(
        request,
        "payments/receipts_page.html",
        {
            "receipts": receipts,
            "status": status,
            "statuses": [(s, ReceiptStatus(s).label) for s in selectors.RECEIPTS_NOT_DONE],
            "can_retry": has_perm(request.user, Perm.PAYMENT_SETTINGS),
        },
    )


@require_POST
@require_perm(Perm.PAYMENT_SETTINGS)
def receipt_retry(request, pk: int):
    receipt = get_object_or_404(FiscalReceipt.objects.select_related("payment__subscriber"), pk=pk)
    payment = receipt.payment
    if payment.subscriber_id:
        check_branch(request.user, payment.subscriber.branch_id)
    notice = error = ""
    try:
        actions.do_retry_receipt(receipt, acting_user=request.user)
        notice = _("The receipt is queued again.")
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        html = payment_receipt_section(request, payment, notice=notice, error=error)
        return HttpResponse(html, status=422 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect(reverse("payments:receipts"))


@csrf_exempt
def atol_callback(request):
    """ATOL's ``callback_url``: its body only names a document (``uuid``); the report is fetched from ATOL
    again and applied, so a forged or replayed callback cannot mark anything done. Always JSON."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        uuid = fiscal.get("atol").parse_callback(request.body)
    except fiscal.CallbackRejected as exc:
        return JsonResponse({"error": {"code": "bad_callback", "message": str(exc)}}, status=400)
    try:
        receipt = actions.do_receipt_callback(uuid)
    except fiscal.FiscalError as exc:
        # ATOL cannot be asked right now: the worker polls the receipt anyway.
        logger.warning("ATOL callback for %s: the report could not be fetched: %s", uuid, exc)
        return JsonResponse({"error": {"code": "report_unavailable", "message": str(exc)}}, status=503)
    if receipt is None:
        return JsonResponse({"error": {"code": "unknown_document", "message": "no such receipt"}}, status=404)
    return JsonResponse({"status": receipt.status})
