"""Importing a bank statement (1CClientBankExchange): every incoming payment to our accounts is taken in
through the one intake, on the ``bank`` channel, with the document's key as its id.

Guarantees: the same file imported again creates nothing (its SHA-256 is unique); a document already taken in
from an earlier, overlapping statement adds no line and no payment (the line key is unique, and so is the
payment's ``(channel, external_id)``); a line that cannot be read is quarantined with its reason and raw text
while the rest imports; the whole import is one transaction, so a crash leaves no half of a statement.

Bounds: a file past ``ABONENT_BANK_STATEMENT_MAX_BYTES`` or with more than ``ABONENT_BANK_STATEMENT_MAX_DOCUMENTS``
documents is refused before the transaction (``file_too_large``, ``statement_too_many_documents``), so one upload
cannot hold a request and its locks for minutes. Lines are taken in sorted by their key, with the channel's ledger
accounts created beforehand, so two overlapping statements imported at once lock the same rows in the same order
(one waits for the other instead of a deadlock). The money is the bank's, not the uploader's: payments are taken
in with no ``taken_by`` (they never count in a cashier's cash day, and a cashier cannot cancel them as "their own"),
and a branch cashier's file imports whole (the branch limits what they see, not which lines of the ISP's account
are credited); who uploaded it is the statement's ``uploaded_by``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import ledger
from abonent.core import audit, clock
from abonent.staff.permissions import Perm

from ..channels import channel_account
from ..models import BankStatement, LineStatus, PaymentMethod, PaymentStatus, StatementLine, SuspenseReason
from ..statements.matching import match_line
from ..statements.parser import Document, StatementEntry, StatementError, parse_statement, read_document
from .common import check
from .intake import do_receive_payment

CHANNEL = "bank"


@dataclass(frozen=True)
class StatementImport:
    """The statement and whether this call created it (False: the same file was imported before)."""

    statement: BankStatement
    created: bool


def _file_error(exc: StatementError) -> ValidationError:
    messages = {
        "statement_format": _("This is not a bank statement in the 1C exchange format (1CClientBankExchange)."),
        "statement_encoding": _(
            "The statement's encoding cannot be recognised: export it again as Windows (cp1251), DOS (cp866) or UTF-8."
        ),
    }
    return ValidationError({"file": ValidationError(messages[exc.code], code=exc.code)})


def _too_large() -> ValidationError:
    limit = settings.ABONENT_BANK_STATEMENT_MAX_BYTES
    message = _("The file is larger than %(limit)d bytes.") % {"limit": limit}
    return ValidationError({"file": ValidationError(message, code="file_too_large")})


def read_upload(upload) -> bytes:
    """An uploaded file's bytes; one past the size limit is refused without being read into memory."""
    if upload.size > settings.ABONENT_BANK_STATEMENT_MAX_BYTES:
        raise _too_large()
    return upload.read()


def _too_many_documents() -> ValidationError:
    limit = settings.ABONENT_BANK_STATEMENT_MAX_DOCUMENTS
    message = _("The statement holds more than %(limit)d documents: export it in parts (fewer days per file).") % {
        "limit": limit
    }
    return ValidationError({"file": ValidationError(message, code="statement_too_many_documents")})


def our_accounts(parsed) -> set[str]:
    configured = set(settings.ABONENT_BANK_ACCOUNTS)
    return configured or set(parsed.accounts)


def do_import_statement(content: bytes, *, filename: str = "", acting_user) -> StatementImport:
    """Import a statement file: parse, match each incoming line to a subscriber, take the money in."""
    check(acting_user, Perm.PAYMENT_IMPORT)
    if not content:
        raise ValidationError({"file": ValidationError(_("The file is empty."), code="required")})
    if len(content) > settings.ABONENT_BANK_STATEMENT_MAX_BYTES:
        raise _too_large()
    digest = hashlib.sha256(content).hexdigest()
    existing = BankStatement.objects.filter(sha256=digest).first()
    if existing is not None:
        return StatementImport(existing, created=False)
    try:
        parsed = parse_statement(content)
    except StatementError as exc:
        raise _file_error(exc) from None
    accounts = our_accounts(parsed)
    if not accounts:
        raise ValidationError(
            {
                "file": ValidationError(
                    _("The file names no settlement account: set ABONENT_BANK_ACCOUNTS to the ISP's accounts."),
                    code="statement_no_account",
                )
            }
        )
    if len(parsed.documents) > settings.ABONENT_BANK_STATEMENT_MAX_DOCUMENTS:
        raise _too_many_documents()
    user = acting_user if getattr(acting_user, "pk", None) else None
    today = clock.today()
    entries = sorted(
        ((document, read_document(document, accounts, today)) for document in parsed.documents),
        key=lambda pair: (pair[1].key, pair[0].position),
    )
    # Created (and committed) before the import's transaction: concurrent imports do not race to create them.
    channel_account(CHANNEL)
    ledger.system_account("suspense")
    try:
        with transaction.atomic():
            statement = BankStatement.objects.create(
                sha256=digest,
                filename=(filename or "")[-255:],
                encoding=parsed.encoding,
                account=(parsed.header.get("РасчСчет") or (parsed.accounts[0] if parsed.accounts else ""))[:34],
                date_from=parsed.date("ДатаНачала"),
                date_to=parsed.date("ДатаКонца"),
                uploaded_by=user,
                uploaded_at=clock.now(),
                documents=len(parsed.documents),
            )
            counts: dict[str, int] = {}
            for document, entry in entries:
                _import_document(statement, document, entry, counts)
            _save_counts(statement, counts)
            audit.record(
                actor=acting_user,
                action="payments.statement_imported",
                obj=statement,
                after={**statement.counts, "file": statement.filename, "sha256": digest},
            )
    except IntegrityError:
        # The same file uploaded at the same moment by someone else: theirs won, ours rolled back.
        existing = BankStatement.objects.filter(sha256=digest).first()
        if existing is None:
            raise
        return StatementImport(existing, created=False)
    return StatementImport(statement, created=True)


def _import_document(statement: BankStatement, document: Document, entry: StatementEntry, counts: dict) -> None:
    if entry.status == "incoming" and entry.payer_inn and entry.payer_inn in settings.ABONENT_BANK_SETTLEMENT_INNS:
        # A gateway's or an agent's payout: its payments were credited one by one when they arrived.
        entry.status, entry.code = "ignored", "settlement"
    try:
        with transaction.atomic():
            line = StatementLine.objects.create(
                statement=statement,
                position=document.position,
                key=entry.key,
                status=LineStatus.BROKEN if entry.status == "broken" else LineStatus.IGNORED,
                reason_code=entry.code,
                reason_detail=entry.reason[:255],
                number=entry.number,
                date=entry.date,
                received_on=entry.received_on,
                amount=entry.amount,
                payer=entry.payer,
                payer_account=entry.payer_account,
                payer_inn=entry.payer_inn,
                recipient_account=entry.recipient_account,
                purpose=entry.purpose,
                raw=document.raw,
            )
            if entry.status == "incoming":
                _take_in(line, entry)
    except IntegrityError:
        # Already taken in from an earlier statement (or a concurrent one): that statement owns the line.
        _count(counts, "repeated")
        return
    if line.status == LineStatus.CREDITED:
        _count(counts, "credited", credited_amount=line.amount)
    elif line.status in (LineStatus.SUSPENSE, LineStatus.MATCHED, LineStatus.AMBIGUOUS):
        _count(counts, "ambiguous" if line.status == LineStatus.AMBIGUOUS else "suspense", suspense_amount=line.amount)
    else:
        _count(counts, str(line.status))


def _count(counts: dict, name: str, **amounts) -> None:
    counts[name] = counts.get(name, 0) + 1
    for amount_field, amount in amounts.items():
        counts[amount_field] = counts.get(amount_field, 0) + amount


def _save_counts(statement: BankStatement, counts: dict) -> None:
    """The statement's counters, written once at the end (not one UPDATE per line)."""
    for name, value in counts.items():
        setattr(statement, name, getattr(statement, name) + value)
    if counts:
        statement.save(update_fields=list(counts))


def _take_in(line: StatementLine, entry: StatementEntry) -> None:
    match = match_line(entry.purpose, entry.payer_inn, entry.payer)
    details = {"statement_id": line.statement_id, "statement_line_id": line.pk, "rule": match.rule}
    if match.ambiguous or match.unconfirmed:
        details["candidates"] = match.candidates
    intake = do_receive_payment(
        channel=CHANNEL,
        method=PaymentMethod.BANK,
        external_id=entry.key,
        amount=entry.amount,
        subscriber=match.subscriber,
        # The purpose text is what the payer gave to say whose account it is (kept for the suspense queue).
        account_ref=entry.purpose[:255],
        received_at=timezone.make_aware(dt.datetime.combine(entry.received_on, dt.time.min)),
        payer=entry.payer,
        payer_inn=entry.payer_inn,
        # Reported by the bank, not taken by the uploader: no taken_by, no cashier's branch check (module doc).
        acting_user=None,
        memo=(
            _("Bank payment order No. %(number)s of %(date)s")
            % {"number": entry.number, "date": entry.date.strftime("%d.%m.%Y")}
        )[:500],
        details=details,
        suspense_reason=(
            SuspenseReason.AMBIGUOUS if match.ambiguous else SuspenseReason.UNCONFIRMED if match.unconfirmed else ""
        ),
    )
    payment = intake.payment
    if not intake.created:
        # The payment exists with this key but no line does (taken in by hand on the bank channel): not again.
        raise IntegrityError("payment taken in before the statement")
    line.payment = payment
    line.rule = match.rule
    line.candidates = match.candidates if match.ambiguous or match.unconfirmed else []
    if match.unconfirmed:
        # Shown to the operator with its candidate, who assigns it after a look (matching.py's docstring).
        line.reason_code = SuspenseReason.UNCONFIRMED
    if match.ambiguous:
        line.status = LineStatus.AMBIGUOUS
    elif payment.status == PaymentStatus.CREDITED:
        line.status = LineStatus.CREDITED
    elif match.subscriber is not None:
        line.status = LineStatus.MATCHED
    else:
        line.status = LineStatus.SUSPENSE
    line.save(update_fields=["payment", "rule", "candidates", "status", "reason_code"])


__all__ = ["CHANNEL", "StatementImport", "do_import_statement", "read_upload"]
