"""Writes of the documents app. Each is atomic, checks the actor's access (``None`` is the system: the worker and
the command), validates everything before writing anything, writes an audit row, and enqueues the PDF and the
subscriber's message after commit.

Numbers are gapless per series and year: the number is taken from ``core.sequences`` (an UPDATE that holds the
series' row lock) inside the transaction that inserts the document, so a rollback gives the number back and two
generators queue on the lock instead of sharing or skipping a number. Exactly-once per month is the
``documents_month_once`` constraint: a second generator's insert conflicts inside a savepoint, which also returns
its number. Which scheme closes a month (act + СФ, or УПД) is decided under the subscriber's row lock, taken
before reading what exists, so two generators of one subscriber (an act and a УПД asked for at once) run one
after the other. Every lock wait has a deadline (``core.deadlines``): past it the generation fails whole.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext as _

from abonent.billing.calculations import add_months
from abonent.core import audit, clock, sequences
from abonent.core.deadlines import db_deadline
from abonent.notifications.models import Event
from abonent.notifications.queueing import notify
from abonent.notifications.selectors import preference_of
from abonent.payments.fiscal.base import FiscalError
from abonent.staff.permissions import Perm, allowed_branch_ids, check_branch, check_perm
from abonent.subscribers.models import Subscriber

from . import content
from .models import SERIES, Document, DocumentKind, DocumentRun, DocumentStatus, RunStatus

CLOSING_CHOICES = ("act", "upd")
CLOSING_KINDS = frozenset({DocumentKind.ACT, DocumentKind.VAT_INVOICE, DocumentKind.UPD})
# УПД status 1: it is a счёт-фактура as well as the transfer document (the seller pays VAT); 2: transfer only.
UPD_WITH_VAT, UPD_WITHOUT_VAT = 1, 2
# Seconds a generation waits for a row another transaction holds (the subscriber, a number series) and for one
# statement: an API call or a console click answers "busy" instead of hanging; the run records the failure.
LOCK_S = 5
STATEMENT_S = 30


def _check(acting_user, perm: str, subscriber=None) -> None:
    if acting_user is None:
        return
    check_perm(acting_user, perm)
    if subscriber is not None:
        check_branch(acting_user, subscriber.branch_id)


def sequence_name(series: str, year: int) -> str:
    return f"documents:{series}:{year}"


def check_month(month: dt.date, *, field_name: str = "month") -> dt.date:
    """A month whose closing documents may be issued: one that has ended (``month_not_closed`` otherwise)."""
    month = month.replace(day=1)
    if month >= clock.today().replace(day=1):
        raise ValidationError({field_name: ValidationError(_("The month has not ended yet."), code="month_not_closed")})
    return month


def check_vat_rates(month: dt.date, *, field_name: str = "month") -> None:
    """Refuse a month the dated VAT rates do not cover (``no_vat_rate``): its documents cannot state a rate."""
    start, end = content.month_bounds(month)
    try:
        content.vat_rate_on(start)
        content.vat_rate_on(end)
    except FiscalError:
        message = _("No VAT rate is set for this month: documents cannot be issued for it.")
        raise ValidationError({field_name: ValidationError(message, code="no_vat_rate")}) from None


def check_seller(seller: dict) -> None:
    """Refuse to number a document without the seller's name or ИНН (``seller_incomplete``): a final document
    cannot be changed afterwards, and a счёт-фактура without them is not one."""
    missing = [
        label for key, label in (("name", _("company name")), ("inn", _("INN"))) if not (seller.get(key) or "").strip()
    ]
    if missing:
        message = _("The company's requisites are incomplete (%(missing)s): set them in the settings first.") % {
            "missing": ", ".join(missing)
        }
        raise ValidationError({"seller": ValidationError(message, code="seller_incomplete")})


def check_unlimited(acting_user) -> None:
    """The month-end run and its pages cover every branch: a branch-limited user may not start or read them."""
    if acting_user is not None and allowed_branch_ids(acting_user) is not None:
        raise PermissionDenied(_("The month-end run covers every branch: it is not available to branch-limited users."))


def _lock_subscriber(subscriber: Subscriber) -> None:
    """Deadlines for this transaction's waits, then the subscriber's row lock (see the module's docstring)."""
    db_deadline(lock=LOCK_S, statement=STATEMENT_S, unless_set=True)
    Subscriber.objects.select_for_update().filter(pk=subscriber.pk).values_list("pk", flat=True).first()


def closing_kind() -> str:
    kind = (settings.ABONENT_DOCUMENTS_CLOSING or "act").strip().lower()
    return kind if kind in CLOSING_CHOICES else "act"


@dataclass
class Issued:
    """What one generation did: the documents issued now, and those of the month that already existed."""

    created: list[Document] = field(default_factory=list)
    existing: list[Document] = field(default_factory=list)


def _insert_final(
    *,
    kind: str,
    subscriber: Subscriber,
    date: dt.date,
    start: dt.date,
    end: dt.date,
    lines: list[dict],
    seller: dict,
    buyer: dict,
    extra: dict,
    acting_user,
    corrects: Document | None = None,
) -> Document | None:
    """Number and insert one final document; ``None`` when the month's document exists already (its number is
    given back with the savepoint)."""
    total, vat_total = content.totals(lines)
    series = SERIES[kind]
    try:
        with transaction.atomic():
            number = sequences.allocate(sequence_name(series, date.year))[0]
            document = Document.objects.create(
                kind=kind,
                series=series,
                year=date.year,
                number=number,
                date=date,
                subscriber=subscriber,
                period_start=start,
                period_end=end,
                status=DocumentStatus.FINAL,
                corrects=corrects,
                seller=seller,
                buyer=buyer,
                lines=lines,
                extra=extra,
                total=total,
                vat_total=vat_total,
                created_at=clock.now(),
                created_by=acting_user if getattr(acting_user, "pk", None) else None,
            )
    except IntegrityError:
        if corrects is not None:
            raise ValidationError(_("This document has been corrected already."), code="already_corrected") from None
        return None
    audit.record(
        actor=acting_user,
        action="document.issued",
        obj=document,
        after={"kind": kind, "number": number, "total": total, "corrects": corrects.pk if corrects else None},
        subscriber_id=subscriber.pk,
    )
    _after_issue(document)
    return document


def _portal_link(document: Document) -> str:
    base = settings.ABONENT_PUBLIC_URL
    if not base:
        return ""
    try:
        return base + reverse("portal:pay_document_pdf", args=[document.pk])
    except NoReverseMatch:
        return ""


def _after_issue(document: Document) -> None:
    """The message to the subscriber (its outbox row commits with the document) and the PDF after commit."""
    from .tasks import render_document

    preference = preference_of(document.subscriber)
    with translation.override((preference.language if preference else "") or settings.LANGUAGE_CODE):
        # The kind in the language the subscriber's messages are in; the number and date as on the document.
        label = f"{document.get_kind_display()} № {document.number} от {document.date:%d.%m.%Y}"
    notify(
        document.subscriber_id,
        Event.DOCUMENT_ISSUED,
        key=f"document:{document.pk}",
        context={"document": label, "document_link": _portal_link(document)},
    )
    transaction.on_commit(partial(render_document.enqueue, document_id=document.pk))


@transaction.atomic
def do_issue_month_documents(
    subscriber: Subscriber, month: dt.date, *, acting_user, closing: str | None = None
) -> Issued:
    """An organisation's documents at the close of ``month``: the act and the VAT invoice (or one УПД) for the
    services of the month, and the invoice for the next month's fees. Idempotent: a document of the month that
    exists is returned in ``existing``, never issued again. Persons get statements, not these."""
    _check(acting_user, Perm.DOCUMENT_MANAGE, subscriber)
    month = check_month(month)
    if not subscriber.is_organization:
        message = _("Closing documents are issued to organisations only.")
        raise ValidationError({"subscriber": ValidationError(message, code="not_organization")})
    closing = closing or closing_kind()
    if closing not in CLOSING_CHOICES:
        raise ValidationError({"closing": ValidationError(_("Choose an act or a UPD."), code="invalid_choice")})
    check_vat_rates(month)
    seller = content.seller_block()
    check_seller(seller)
    _lock_subscriber(subscriber)
    start, end = content.month_bounds(month)
    last_day = end - dt.timedelta(days=1)
    buyer = content.buyer_block(subscriber)
    wanted: list[tuple[str, dt.date, dt.date, dt.date, list[dict], dict]] = []
    lines = content.month_lines(subscriber, month)
    if lines:
        vat_payer = any(line["vat_rate"] is not None for line in lines)
        if closing == "upd":
            status = UPD_WITH_VAT if vat_payer else UPD_WITHOUT_VAT
            wanted.append((DocumentKind.UPD, last_day, start, end, lines, {"upd_status": status}))
        else:
            wanted.append((DocumentKind.ACT, last_day, start, end, lines, {}))
            if vat_payer:
                wanted.append((DocumentKind.VAT_INVOICE, last_day, start, end, lines, {}))
    next_start, next_end = end, add_months(end, 1)
    invoice_lines = content.next_month_lines(subscriber, month)
    if invoice_lines:
        wanted.append((DocumentKind.INVOICE, end, next_start, next_end, invoice_lines, {}))
    existing = {
        (d.kind, d.period_start): d
        for d in Document.objects.filter(
            subscriber=subscriber, status=DocumentStatus.FINAL, corrects__isnull=True,
            period_start__in=[start, next_start],
        )
    }  # fmt: skip
    # A month closed by an act is not closed again by a УПД after the setting changed (nor the other way round).
    closed_by = {kind for (kind, p_start) in existing if p_start == start and kind in CLOSING_KINDS}
    if closed_by:
        wanted = [w for w in wanted if w[0] not in CLOSING_KINDS or w[0] in closed_by]
    result = Issued()
    for kind, date, p_start, p_end, doc_lines, extra in wanted:
        found = existing.get((kind, p_start))
        if found is None:
            created = _insert_final(
                kind=kind, subscriber=subscriber, date=date, start=p_start, end=p_end, lines=doc_lines,
                seller=seller, buyer=buyer, extra=extra, acting_user=acting_user,
            )  # fmt: skip
            if created is not None:
                result.created.append(created)
                continue
            found = Document.objects.get(
                subscriber=subscriber, kind=kind, period_start=p_start, status=DocumentStatus.FINAL,
                corrects__isnull=True,
            )  # fmt: skip
        result.existing.append(found)
    return result


def latest_of(document: Document) -> Document:
    """The last document of a correction chain (what a new correction must correct)."""
    while True:
        following = Document.objects.filter(corrects=document).first()
        if following is None:
            return document
        document = following


# A correction that changes amounts (корректировочный: its СФ is the form of Приложение № 2 to Постановление 1137,
# before/after/difference) or only requisites (исправленный: the ordinary form, «Исправление № … от …»).
CORRECTION_ADJUSTS, CORRECTION_FIXES = "adjustment", "fix"
REQUISITES = ("name", "inn", "kpp", "address")


def _requisites(block: dict) -> tuple:
    return tuple((block.get(key) or "").strip() for key in REQUISITES)


@transaction.atomic
def do_correct_document(document: Document, *, acting_user, reason: str) -> Document:
    """A correcting document (корректировочный счёт-фактура, a corrected act or УПД, a new invoice) with the
    month's amounts as the ledger has them now; the original stays as it was. Refused when nothing changed, when
    the document is a draft, or when it has been corrected already (correct the latest one)."""
    _check(acting_user, Perm.DOCUMENT_MANAGE, document.subscriber)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Say why the document is corrected."), code="required")})
    if not document.is_final:
        raise ValidationError(_("Only a final document can be corrected."), code="not_final")
    if document.kind == DocumentKind.STATEMENT:
        raise ValidationError(_("A statement is not corrected: issue a new one."), code="not_correctable")
    if Document.objects.filter(corrects=document).exists():
        # Checked for a clear message; the ``documents_corrected_once`` constraint is what guarantees it.
        raise ValidationError(_("This document has been corrected already."), code="already_corrected")
    subscriber = document.subscriber
    seller = content.seller_block()
    check_seller(seller)
    _lock_subscriber(subscriber)
    if document.kind == DocumentKind.INVOICE:
        lines = content.next_month_lines(subscriber, add_months(document.period_start, -1))
    else:
        lines = content.month_lines(subscriber, document.period_start)
    buyer = content.buyer_block(subscriber)
    amounts_changed = [(x["service"], x["amount"]) for x in lines] != [
        (x["service"], x["amount"]) for x in document.lines
    ]
    # Requisites (ИНН, КПП, name, address) are compared too: a document with a wrong КПП is put right by an
    # исправленный document with the same amounts; changed amounts make a корректировочный one.
    requisites_changed = _requisites(seller) != _requisites(document.seller) or _requisites(buyer) != _requisites(
        document.buyer
    )
    if not amounts_changed and not requisites_changed:
        message = _("Neither the amounts nor the requisites have changed: there is nothing to correct.")
        raise ValidationError(message, code="nothing_changed")
    extra = {**document.extra, "correction_reason": reason, "corrects_number": document.number,
             "corrects_date": document.date.isoformat(),
             "correction_kind": CORRECTION_ADJUSTS if amounts_changed else CORRECTION_FIXES}  # fmt: skip
    correction = _insert_final(
        kind=document.kind, subscriber=subscriber, date=clock.today(), start=document.period_start,
        end=document.period_end, lines=lines, seller=seller, buyer=buyer,
        extra=extra, acting_user=acting_user, corrects=document,
    )  # fmt: skip
    assert correction is not None
    return correction


# --- The month-end run -----------------------------------------------------------------------------------------


def organisations_to_document(month: dt.date):
    """Organisations active now, and those closed (or suspended) since that had charges or ledger entries in the
    month: services rendered in November are acted even if the contract ended on 2 December."""
    from abonent.billing.models import Charge, LedgerTransaction
    from abonent.subscribers.models import SubscriberKind, SubscriberStatus

    start, end = content.month_bounds(month)
    charged = Charge.objects.filter(transaction__effective_date__gte=start, transaction__effective_date__lt=end).values(
        "subscription__subscriber_id"
    )
    posted = LedgerTransaction.objects.filter(
        effective_date__gte=start, effective_date__lt=end, subscriber_id__isnull=False
    ).values("subscriber_id")
    return Subscriber.objects.filter(
        Q(status=SubscriberStatus.ACTIVE) | Q(pk__in=charged) | Q(pk__in=posted), kind=SubscriberKind.ORGANIZATION
    ).order_by("pk")


@transaction.atomic
def do_start_document_run(month: dt.date, *, acting_user) -> DocumentRun:
    """A run over every active organisation for a closed month, carried out by the worker (``tasks.run_documents``)."""
    _check(acting_user, Perm.DOCUMENT_MANAGE)
    check_unlimited(acting_user)
    month = check_month(month)
    check_vat_rates(month)
    check_seller(content.seller_block())
    run = DocumentRun.objects.create(
        month=month,
        total=organisations_to_document(month).count(),
        created_at=clock.now(),
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    audit.record(actor=acting_user, action="document.run_started", obj=run, after={"month": month})
    from .tasks import run_documents

    transaction.on_commit(partial(run_documents.enqueue, run_id=run.pk))
    return run


def carry_out_run(run_id: int, *, chunk: int = 50) -> DocumentRun:
    """Issue the month's documents for each organisation, one transaction each (one failure does not stop the
    others), and move the run's counters after each chunk. Safe to run twice: issued documents are found, not
    issued again, and the counters restart from the first subscriber."""
    run = DocumentRun.objects.get(pk=run_id)
    if run.status == RunStatus.DONE:
        return run
    DocumentRun.objects.filter(pk=run_id).update(status=RunStatus.RUNNING, done=0, failed=0, issued=0, errors=[])
    errors: list[dict] = []
    done = failed = issued = 0
    ids = list(organisations_to_document(run.month).values_list("pk", flat=True))
    for offset in range(0, len(ids), chunk):
        for subscriber in Subscriber.objects.filter(pk__in=ids[offset : offset + chunk]).order_by("pk"):
            try:
                result = do_issue_month_documents(subscriber, run.month, acting_user=None)
            except Exception as exc:
                failed += 1
                if len(errors) < 100:
                    errors.append({"subscriber": subscriber.pk, "error": str(exc)[:300]})
                continue
            done += 1
            issued += len(result.created)
        DocumentRun.objects.filter(pk=run_id).update(
            total=len(ids), done=done, failed=failed, issued=issued, errors=errors
        )
    DocumentRun.objects.filter(pk=run_id).update(
        status=RunStatus.DONE if not failed else RunStatus.FAILED, finished_at=clock.now(), total=len(ids)
    )
    run.refresh_from_db()
    return run
