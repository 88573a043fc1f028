"""Bank statements in the console: the list with the upload form, one statement's review screen, and assigning a
line that waits in suspense. Thin: parse, check access, call the action or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from abonent.core.forms import apply_action_errors
from abonent.core.money import format_money
from abonent.staff.permissions import Perm, has_perm, require_perm
from abonent.subscribers.selectors import subscriber_by_account, visible_subscribers

from .. import actions, selectors
from ..actions.statements import read_upload
from ..models import BankStatement, LineStatus, PaymentStatus, StatementLine
from ..statements.forms import AssignLineForm, StatementUploadForm
from .common import answers_busy


def reason_text(line: StatementLine) -> str:
    """Why a line is broken, ignored or not credited to the subscriber it names, for people."""
    detail = line.reason_detail
    texts = {
        "fields_missing": _("Required fields are missing: %(detail)s") % {"detail": detail},
        "date_invalid": _("The date cannot be read: %(detail)s") % {"detail": detail},
        "amount_invalid": _("The amount cannot be read: %(detail)s") % {"detail": detail},
        "document_unclosed": _("The document is cut off: the file ends before КонецДокумента."),
        "outgoing": _("An outgoing payment from our account."),
        "other_account": _("Paid to an account that is not ours."),
        "own_transfer": _("A transfer between our own accounts."),
        "settlement": _("A payout of a gateway or payment agent: its payments were taken in one by one."),
        "unconfirmed": _(
            "The purpose names the candidate's old account number without a marker, and the payer's name is not "
            "the candidate's: check before assigning."
        ),
    }
    return texts.get(line.reason_code, detail)


@answers_busy
@require_http_methods(["GET", "POST"])
@require_perm(Perm.PAYMENT_IMPORT)
def statement_list(request):
    form = StatementUploadForm()
    status = 200
    if request.method == "POST":
        form = StatementUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = actions.do_import_statement(
                    read_upload(upload), filename=upload.name, acting_user=request.user
                )
            except ValidationError as exc:
                apply_action_errors(form, exc)
            else:
                s = result.statement
                if result.created:
                    messages.success(
                        request,
                        _(
                            "Imported: %(credited)d credited (%(amount)s), %(suspense)d in suspense, %(ambiguous)d "
                            "ambiguous, %(broken)d broken, %(ignored)d ignored, %(repeated)d imported before."
                        )
                        % {**s.counts, "amount": format_money(s.credited_amount)},
                    )
                else:
                    messages.info(request, _("This file was imported before; nothing was imported again."))
                return redirect("payments:statement", pk=s.pk)
        status = 422
    context = {"form": form, "statements": selectors.list_statements()}
    return render(request, "payments/statements.html", context, status=status)


def _review(request, statement: BankStatement, *, bound: dict | None = None, status: int = 200):
    lines = selectors.statement_lines(statement)
    wanted = request.GET.get("status", "")
    if wanted in LineStatus.values:
        lines = [line for line in lines if line.status == wanted]
    candidate_ids = {pk for line in lines for pk in line.candidates}
    paid_ids = {line.payment.subscriber_id for line in lines if line.payment is not None}
    # Candidates and the subscriber a line was credited to, among those the user may see: another branch's
    # subscriber is counted, never named (which account a payer's INN belongs to is that branch's business).
    candidates = {s.pk: s for s in visible_subscribers(request.user).filter(pk__in=candidate_ids | (paid_ids - {None}))}
    may_assign = has_perm(request.user, Perm.PAYMENT_TAKE)
    rows = []
    for line in lines:
        line_candidates = [candidates[pk] for pk in line.candidates if pk in candidates]
        waiting = line.payment is not None and line.payment.status == PaymentStatus.SUSPENSE
        form = None
        if may_assign and waiting:
            form = (bound or {}).get(line.pk) or AssignLineForm(candidates=line_candidates, prefix=f"line-{line.pk}")
        rows.append(
            {
                "line": line,
                "reason": reason_text(line) if line.reason_code else "",
                "candidates": line_candidates,
                "hidden_candidates": len(line.candidates) - len(line_candidates),
                "subscriber": candidates.get(line.payment.subscriber_id) if line.payment is not None else None,
                "subscriber_hidden": (
                    line.payment is not None
                    and line.payment.subscriber_id is not None
                    and line.payment.subscriber_id not in candidates
                ),
                "form": form,
            }
        )
    context = {"statement": statement, "rows": rows, "statuses": LineStatus.choices, "wanted": wanted}
    return render(request, "payments/statement.html", context, status=status)


@require_perm(Perm.PAYMENT_IMPORT)
def statement_detail(request, pk: int):
    return _review(request, get_object_or_404(BankStatement, pk=pk))


@require_POST
@answers_busy
@require_perm(Perm.PAYMENT_TAKE)
def assign_line(request, pk: int, line_id: int):
    statement = get_object_or_404(BankStatement, pk=pk)
    line = get_object_or_404(StatementLine.objects.select_related("payment"), pk=line_id, statement=statement)
    if line.payment is None:
        return redirect("payments:statement", pk=statement.pk)
    visible = visible_subscribers(request.user)
    form = AssignLineForm(
        request.POST, candidates=list(visible.filter(pk__in=line.candidates)), prefix=f"line-{line.pk}"
    )
    if form.is_valid():
        if form.cleaned_data.get("candidate"):
            subscriber = visible.filter(pk=form.cleaned_data["candidate"]).first()
        else:
            subscriber = subscriber_by_account(form.cleaned_data["account_number"], queryset=visible)
        if subscriber is None:
            form.add_error("account_number", _("No subscriber has this account number."))
        else:
            try:
                actions.do_assign_payment(
                    line.payment, subscriber=subscriber, acting_user=request.user, reason=form.cleaned_data["reason"]
                )
            except ValidationError as exc:
                apply_action_errors(form, exc, {"subscriber": "account_number"})
            else:
                messages.success(
                    request,
                    _("%(amount)s credited to %(account)s.")
                    % {"amount": format_money(line.amount), "account": subscriber.account_number},
                )
                return redirect(reverse("payments:statement", args=[statement.pk]) + f"#line-{line.pk}")
    return _review(request, statement, bound={line.pk: form}, status=422)
