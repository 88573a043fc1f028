"""The subscribers file: the plan (subscriber_plan.py: every row cleaned, what must be unique checked, duplicates
found), which is all a dry run does; then, in a real run, the new rows written in chunks through the domain apps'
bulk import actions (two chunks at once on PostgreSQL), the others merged and updated, and the reconciliation taken
from what the ledger holds. One plan for both runs, so they cannot drift."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from abonent.billing import ledger
from abonent.billing.actions.imports import (
    ImportedAccount,
    corrected_key,
    do_adjust_opening_balance,
    do_import_accounts,
    opening_correction_refusal,
    opening_key,
)
from abonent.billing.models import AccountKind, LedgerTransaction, TransactionKind
from abonent.core import clock
from abonent.core.bulk_load import BulkWriter, matching, reserve_ids
from abonent.core.models import AuditEvent
from abonent.core.money import quantize
from abonent.network.bulk_import import (
    do_import_logins,
)
from abonent.subscribers.actions.imports import (
    confirm_account_numbers,
    do_import_subscribers,
    reserve_account_numbers,
)
from abonent.subscribers.models import Subscriber

from .engine import CHUNK_ROWS, Context, read_rows
from .models import Entity, ImportedRecord
from .profiles import DEFAULT_STATUSES
from .reports import Reconciliation
from .subscriber_plan import Row, SubscriberPlan

# Chunks written at once on PostgreSQL: two are enough for one to build its rows while the server ingests the other's,
# and each more is a connection and a chunk of rows in memory.
WRITERS = 2
# What the database may refuse a chunk with: Django's errors, and psycopg's own from the COPY writer (BulkWriter
# talks to the driver directly, below Django's error wrapping).
try:
    from psycopg import DataError as _PgDataError
    from psycopg import IntegrityError as _PgIntegrityError
except ImportError:  # SQLite-only installs
    _PgDataError = _PgIntegrityError = IntegrityError
REFUSED = (IntegrityError, DataError, _PgIntegrityError, _PgDataError, ValidationError)


class SubscriberRun(SubscriberPlan):
    """One run of a subscribers file, dry or real (``run``); the planning half is ``SubscriberPlan``."""

    def __init__(self, context: Context):
        self.c = context
        self.job = context.job
        self.source = self.job.source
        self.cutover = self.job.cutover_date
        self.reason = _("Imported from the old billing (%(source)s), job %(job)s") % {
            "source": self.source,
            "job": self.job.pk,
        }
        self.statuses = {
            **DEFAULT_STATUSES,
            **{str(k).lower(): v for k, v in self.job.options.get("statuses", {}).items()},
        }
        self.recon = Reconciliation(self.job, dry_run=context.dry_run)

    # --- the run ------------------------------------------------------------------------------------------
    def run(self) -> dict:
        if self.cutover is None:
            raise ValidationError(
                {
                    "cutover_date": ValidationError(
                        _("Say through which day the old system has charged."), code="cutover_required"
                    )
                }
            )
        _headers, rows = read_rows(self.job)
        self.recon.count("read", len(rows))
        self.records = {
            r.old_id: r for r in ImportedRecord.objects.filter(source=self.source, entity=Entity.SUBSCRIBERS)
        }
        self._load_reference()
        cleaned: list[Row] = []
        seen_ids: set[str] = set()
        for number, values in rows:
            row = self._clean(number, values)
            if row is None:
                continue
            if row.old_id in seen_ids:
                self._problem(
                    row, "old_id", "old_id_repeated", _("Old id %(id)s is in the file twice.") % {"id": row.old_id}
                )
                continue
            seen_ids.add(row.old_id)
            if not self._in_pilot(row):
                self.recon.count("outside_pilot")
                continue
            cleaned.append(row)
        new, changed = [], []
        for row in cleaned:
            record = self.records.get(row.old_id)
            if record is None:
                new.append(row)
            elif record.content_hash == row.digest:
                self.recon.unchanged(row)
            else:
                changed.append(row)
        new = self._check_unique(new)
        new, merged = self._duplicates(new)
        self.c.advance(len(rows) - len(new))
        if self.c.dry_run:
            # What the real run would write: each new row's opening transaction is its balance to the kopeck.
            for row in new:
                self.recon.imported(row, opening=quantize(row.balance))
            self.c.advance(len(new))
        else:
            self._write_new(new)
        if merged:
            self._merge(merged)
        for row in changed:
            self._update(row)
        return self.recon.build()

    # --- cleaning -----------------------------------------------------------------------------------------
    def _problem(self, row_or_number, field_name, code, message, *, raw=None, old_id="", warning=False, count=True):
        if isinstance(row_or_number, Row):
            raw, old_id, number = row_or_number.raw, row_or_number.old_id, row_or_number.number
        else:
            number = row_or_number
        self.c.problem(number, old_id, field_name, code, message, raw or {}, warning=warning)
        if not warning and count:
            self.recon.count("quarantined")

    def _write_new(self, new: list[Row]) -> None:
        chunks = [new[start : start + CHUNK_ROWS] for start in range(0, len(new), CHUNK_ROWS)]
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            # SQLite has one writer at a time; inside a caller's transaction (the tests') another connection would
            # not see the rows that transaction holds.
            for part in chunks:
                self._write_chunk(part)
                self.c.advance(len(part))
            return
        # PostgreSQL: WRITERS chunks in flight, each in its own thread, connection and transaction. One builds its
        # rows in Python while the server ingests another's (psycopg waits without the GIL): Python's half of the
        # work and the server's overlap. Account numbers are reserved here, each allocation a short transaction of
        # its own, so the writers do not queue on the sequence's row lock; each confirms its numbers last.
        avoid = {r.subscriber.legacy_account for r in new if r.subscriber.legacy_account}
        ledger.system_account("opening_balances")  # created once here, not by two writers at once
        with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="import-writer") as pool:
            pending: deque = deque()
            for part in chunks:
                numbers = reserve_account_numbers(len(part), avoid=avoid)
                pending.append((part, pool.submit(self._write_detached, part, numbers)))
                if len(pending) >= WRITERS:
                    self._written(pending)
            while pending:
                self._written(pending)

    def _write_detached(self, rows: list[Row], numbers: list[str]):
        """A writer thread's chunk: ``(written, None)``, or ``(None, the refusal)`` for the caller to handle."""
        try:
            with transaction.atomic():
                return self._write(rows, numbers), None
        except REFUSED as exc:
            return None, exc
        finally:
            connection.close()  # the thread's own connection

    def _written(self, pending: deque) -> None:
        """The oldest writer's outcome, taken in the order of the chunks: the report and progress as the sequential
        path keeps them; a refused chunk is written again row by row, here."""
        rows, future = pending.popleft()
        written, refused = future.result()
        self.c.beat()
        if refused is not None:
            # Once the other writer is done: a row written here holds the sequence's lock (``allocate``) while a
            # writer still in flight would wait for it before its commit, and this row might wait for that one's.
            wait([other for _rows, other in pending])
            written = self._write_rows_apart(rows)
        for row, total in written:
            self.recon.imported(row, opening=total)
        self.c.advance(len(rows))

    def _write_chunk(self, rows: list[Row]) -> None:
        try:
            written = self.c.chunk(lambda: self._write(rows))
        except REFUSED:
            written = self._write_rows_apart(rows)
        for row, total in written:
            self.recon.imported(row, opening=total)

    def _write_rows_apart(self, rows: list[Row]) -> list[tuple[Row, Decimal]]:
        """A chunk the database refused, each row in a transaction of its own: only the row at fault is
        quarantined."""
        written = []
        for row in self._recorded_meanwhile(rows):
            try:
                written += self.c.chunk(lambda row=row: self._write([row]))
            except REFUSED as exc:
                self._problem(
                    row, "", "write_refused", _("Refused by the database: %(error)s") % {"error": str(exc)[:300]}
                )
        return written

    def _recorded_meanwhile(self, rows: list[Row]) -> list[Row]:
        """The rows of a refused chunk that another run of this source (the same file started twice) has imported
        since this run looked: unchanged, or changed and updated as such; the others, to be written one by one."""
        recorded = {
            r.old_id: r
            for r in ImportedRecord.objects.filter(
                source=self.source, entity=Entity.SUBSCRIBERS, old_id__in=[row.old_id for row in rows]
            )
        }
        rest = []
        for row in rows:
            record = recorded.get(row.old_id)
            if record is None:
                rest.append(row)
            elif record.content_hash == row.digest:
                self.recon.unchanged(row)
            else:
                self.records[row.old_id] = record
                self.c.chunk(lambda row=row: self._update(row))
        return rest

    def _write(self, rows: list[Row], numbers: list[str] | None = None) -> list[tuple[Row, Decimal]]:
        ids = do_import_subscribers(
            [r.subscriber for r in rows], acting_user=self.c.acting_user, reason=self.reason, account_numbers=numbers
        )
        for row, sid in zip(rows, ids, strict=True):
            row.subscriber_id = sid
        do_import_accounts(
            [
                ImportedAccount(
                    subscriber_id=r.subscriber_id,
                    old_id=r.old_id,
                    opening_balance=r.balance,
                    credit_limit=r.credit_limit,
                    plan=r.plan,
                    monthly_fee=r.monthly_fee,
                    started_on=r.started_on,
                )
                for r in rows
            ],
            source=self.source,
            cutover=self.cutover,
            acting_user=self.c.acting_user,
            reason=self.reason,
        )
        logins = []
        for row in rows:
            if row.login is not None:
                row.login.subscriber_id = row.subscriber_id
                logins.append(row.login)
        do_import_logins(logins, acting_user=self.c.acting_user)
        _insert_records(self.source, self.job, rows)
        if numbers is not None:
            confirm_account_numbers(ids)  # last: the sequence's row lock is held from here to the commit
        # Measured inside the transaction, before a dry run's rollback: what the ledger really holds.
        totals = opening_sums(self.source, [r.old_id for r in rows])
        return [(r, totals.get(r.old_id, Decimal("0.00"))) for r in rows]

    def _merge(self, rows: list[Row]) -> None:
        """Merged rows: planned (the row they duplicate is here, or is imported by this run), then, in a real run,
        written together in one transaction."""
        planned = []
        for row in rows:
            target, primary = row.merged_into, None
            if target is None and row.keys:
                primary = next((r for r in self._written_by_number() if str(r.number) == row.keys[0][1]), None)
                target = primary.subscriber_id if primary else None
            if target is None and primary is None:
                self._problem(row, "", "duplicate_unmerged", _("The row it duplicates was not imported: not merged."))
                continue
            planned.append((row, target, primary))
        if self.c.dry_run:
            for row, target, primary in planned:
                self._merged(row, target if target is not None else _("from row %(row)s") % {"row": primary.number})
                self.recon.merged(row, opening=quantize(row.balance))
        else:
            self.c.chunk(lambda: self._write_merges([(row, target) for row, target, _primary in planned]))

    def _merged(self, row: Row, target) -> None:
        self.c.problem(
            row.number,
            row.old_id,
            "",
            "duplicate_merged",
            _("Merged into subscriber %(id)s: its balance is added, its plan and login are not imported.")
            % {"id": target},
            row.raw,
            warning=True,
        )

    def _write_merges(self, rows: list[tuple[Row, int]]) -> None:
        moment = clock.now()
        for row, target in rows:
            try:
                # A savepoint per row: one the database refuses (a balance past the column) is quarantined alone.
                with transaction.atomic():
                    self._write_merge(row, target, moment)
            except REFUSED as exc:
                self._problem(
                    row, "", "write_refused", _("Refused by the database: %(error)s") % {"error": str(exc)[:300]}
                )

    def _write_merge(self, row: Row, target: int, moment) -> None:
        if row.balance:
            account = ledger.subscriber_account(target, lock=True)
            ledger.post(
                key=opening_key(self.source, row.old_id),
                kind=TransactionKind.OPENING_BALANCE,
                effective_date=self.cutover,
                legs=[(account.pk, row.balance), (ledger.system_account("opening_balances").pk, -row.balance)],
                subscriber_id=target,
                acting_user=self.c.acting_user if getattr(self.c.acting_user, "pk", None) else None,
                memo=self.reason,
            )
        ImportedRecord.objects.create(
            source=self.source,
            entity=Entity.SUBSCRIBERS,
            old_id=row.old_id,
            object_id=target,
            content_hash=row.digest,
            job=self.job,
            created_at=moment,
            updated_at=moment,
        )
        self._merged(row, target)
        self.recon.merged(row, opening=opening_sums(self.source, [row.old_id]).get(row.old_id, Decimal("0.00")))

    def _written_by_number(self):
        return self.recon.written_rows

    def _update(self, row: Row) -> None:
        """A row changed since the last import: the profile, contacts and credit limit follow the file; the balance
        follows it only while the account has not moved (``do_adjust_opening_balance``); the rest is reported."""
        from abonent.billing.actions import do_set_credit_limit
        from abonent.subscribers.actions import do_add_contact, do_update_subscriber

        record = self.records[row.old_id]
        subscriber = Subscriber.objects.get(pk=record.object_id)
        # The plan (both runs): the balance correction ``do_adjust_opening_balance`` would refuse, asked read-only.
        already = opening_sums(self.source, [row.old_id]).get(row.old_id, Decimal("0.00"))
        difference = quantize(row.balance) - already
        refusal = None
        if difference:
            refusal = opening_correction_refusal(ledger.subscriber_account(subscriber.pk).pk, difference)
        if refusal is not None or self.c.dry_run:
            if refusal is not None:
                self._problem(row, "balance", "balance_differs", refusal.messages[0])
            else:
                self.recon.updated(row, opening=quantize(row.balance))
            return
        try:
            with transaction.atomic():
                if _owns(record):
                    changes = {k: v for k, v in row.subscriber.profile.items() if getattr(subscriber, k) != v}
                    if changes:
                        do_update_subscriber(subscriber, changes=changes, acting_user=None, reason=self.reason)
                    existing = set(subscriber.contacts.values_list("value", flat=True))
                    for phone in row.subscriber.phones:
                        if phone not in existing:
                            do_add_contact(subscriber, kind="phone", value=phone, acting_user=None)
                    account = ledger.subscriber_account(subscriber.pk)
                    if account.credit_limit != row.credit_limit:
                        do_set_credit_limit(subscriber, amount=row.credit_limit, reason=self.reason, acting_user=None)
                do_adjust_opening_balance(
                    subscriber,
                    source=self.source,
                    old_id=row.old_id,
                    balance=row.balance,
                    cutover=self.cutover,
                    acting_user=self.c.acting_user,
                )
                ImportedRecord.objects.filter(pk=record.pk).update(
                    content_hash=row.digest, job=self.job, updated_at=clock.now()
                )
        except ValidationError as exc:
            code = exc.error_dict[next(iter(exc.error_dict))][0].code if hasattr(exc, "error_dict") else exc.code
            self._problem(
                row, "balance" if code == "balance_differs" else "", code or "update_refused", exc.messages[0]
            )
            return
        self.recon.updated(row, opening=opening_sums(self.source, [row.old_id]).get(row.old_id, Decimal("0.00")))


def _owns(record: ImportedRecord) -> bool:
    """Whether the subscriber was created from this record, not merged into (another row's, or one that was here
    before): a merged row's later changes must not rewrite someone else's profile, contacts or credit limit."""
    earlier = ImportedRecord.objects.filter(
        entity=Entity.SUBSCRIBERS, object_id=record.object_id, pk__lt=record.pk
    ).exists()
    created = AuditEvent.objects.filter(
        action="subscriber.imported", object_type="subscribers.subscriber", object_id=str(record.object_id)
    ).exists()
    return created and not earlier


def opening_sums(source: str, old_ids: list[str]) -> dict[str, Decimal]:
    """Old id → the sum its opening transactions (the first and any corrections ``<key>:<n>``) put on the
    subscriber's account, read from the ledger. Found through the subscribers the old ids were imported as or
    merged into (``ImportedRecord``) and their transactions (an index); a prefix search of the keys would scan every
    opening transaction of the installation (``LIKE`` cannot use the key's index under a linguistic collation)."""
    keys = {opening_key(source, old_id): old_id for old_id in old_ids}
    sums: dict[str, Decimal] = {}
    for start in range(0, len(old_ids), 5000):
        part = old_ids[start : start + 5000]
        holders = matching(
            ImportedRecord.objects.filter(source=source, entity=Entity.SUBSCRIBERS), "old_id", part
        ).values_list("object_id", flat=True)
        rows = LedgerTransaction.objects.filter(
            kind=TransactionKind.OPENING_BALANCE,
            subscriber_id__in=list(holders),
            postings__account__kind=AccountKind.SUBSCRIBER,
        ).values_list("idempotency_key", "postings__amount")
        wanted = set(part)
        for key, amount in rows:
            old_id = keys.get(key)
            if old_id is None:
                old_id = keys.get(corrected_key(key))
            if old_id in wanted:
                sums[old_id] = sums.get(old_id, Decimal("0.00")) + amount
    return sums


def _insert_records(source: str, job, rows: list[Row]) -> None:
    """The chunk's ``ImportedRecord`` rows in one COPY (``bulk_create`` builds a model instance per row)."""
    moment = clock.now()
    stamp = moment if connection.vendor == "postgresql" else moment.isoformat()
    ids = reserve_ids(ImportedRecord, len(rows))
    writer = BulkWriter()
    writer.write(
        ImportedRecord._meta.db_table,
        ["id", "source", "entity", "old_id", "object_id", "content_hash", "job_id", "created_at", "updated_at"],
        [
            (record_id, source, Entity.SUBSCRIBERS, r.old_id, r.subscriber_id, r.digest, job.pk, stamp, stamp)
            for record_id, r in zip(ids, rows, strict=True)
        ],
    )
    writer.close()
