"""The subscribers file: clean every row, check what must be unique, find duplicates — the plan, which is all a dry
run does — then, in a real run, write the new rows in chunks through the domain apps' bulk import actions, merge
and update the others, and reconcile from what the ledger holds. One plan for both runs, so they cannot drift."""

from __future__ import annotations

import datetime as dt
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import ledger
from abonent.billing.actions.imports import (
    ImportedAccount,
    do_adjust_opening_balance,
    do_import_accounts,
    opening_correction_refusal,
    opening_key,
)
from abonent.billing.models import AccountKind, LedgerTransaction, TransactionKind
from abonent.catalog.models import Plan
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock
from abonent.core.bulk_load import BulkWriter, matching, reserve_ids
from abonent.core.models import AuditEvent, Branch
from abonent.core.money import quantize
from abonent.network.bulk_import import (
    ImportedLogin,
    clean_username,
    do_import_logins,
    taken_static_ips,
    taken_usernames,
)
from abonent.network.models import LoginKind
from abonent.subscribers.actions import AddressData, clean_address, clean_profile
from abonent.subscribers.actions.imports import (
    ImportedSubscriber,
    check_legacy_account,
    confirm_account_numbers,
    do_import_subscribers,
    oversized_values,
    reserve_account_numbers,
    taken_legacy_accounts,
)
from abonent.subscribers.models import Contract, Equipment, Subscriber, SubscriberKind
from abonent.subscribers.search import name_key

from . import clean
from .duplicates import find_duplicates
from .engine import CHUNK_ROWS, Context, content_hash, read_rows
from .models import DuplicateDecision, Entity, ImportedRecord
from .profiles import DEFAULT_STATUSES
from .reports import Reconciliation

MAX_LISTED = 100
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


@dataclass
class Row:
    number: int
    old_id: str
    raw: dict
    digest: str
    subscriber: ImportedSubscriber
    balance: Decimal
    credit_limit: Decimal
    plan: Plan | None
    monthly_fee: Decimal | None
    status: str
    login: ImportedLogin | None
    branch_name: str
    nas: str
    discount: Decimal | None
    started_on: dt.date | None
    subscriber_id: int | None = None
    merged_into: int | None = None
    keys: list[tuple[str, str]] = field(default_factory=list)


class SubscriberRun:
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
    def _load_reference(self) -> None:
        first_day = self.cutover + dt.timedelta(days=1)
        self.plans: dict[str, tuple[Plan, Decimal | None]] = {}
        for plan in Plan.objects.select_related("service"):
            try:
                fee = price_on(plan, first_day).monthly_fee
            except NoPriceError:
                fee = None
            self.plans.setdefault(plan.name.strip().lower(), (plan, fee))
        self.branches = {}
        for branch in Branch.objects.filter(is_active=True):
            self.branches[branch.name.lower()] = branch.pk
            self.branches[branch.code.lower()] = branch.pk
        only = list(Branch.objects.filter(is_active=True).values_list("pk", flat=True))
        self.default_branch = self.job.default_branch_id or (only[0] if len(only) == 1 else None)

    def _problem(self, row_or_number, field_name, code, message, *, raw=None, old_id="", warning=False, count=True):
        if isinstance(row_or_number, Row):
            raw, old_id, number = row_or_number.raw, row_or_number.old_id, row_or_number.number
        else:
            number = row_or_number
        self.c.problem(number, old_id, field_name, code, message, raw or {}, warning=warning)
        if not warning and count:
            self.recon.count("quarantined")

    def _clean(self, number: int, v: dict) -> Row | None:
        raw = v.pop("_raw")
        old_id = v.get("old_id", "").strip()
        errors: list[tuple[str, str, str]] = []
        warnings: list[tuple[str, str, str]] = []

        def attempt(name, fn, *args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except clean.RowProblem as exc:
                errors.append((name, exc.code, exc.message))
                return None

        # One search over the whole row finds the rare garbled one; only then is each value checked to name it.
        if clean.looks_garbled("\x1f".join(v.values())):
            for name, value in v.items():
                if value:
                    attempt(name, clean.check_encoding, value)
        if errors:
            for f, code, message in errors[:1]:
                self._problem(number, f, code, message, raw=raw, old_id=old_id)
            return None
        if not old_id:
            self._problem(number, "old_id", "required", _("The old id is empty."), raw=raw)
            return None
        profile = {
            "kind": SubscriberKind.INDIVIDUAL,
            "last_name": v.get("last_name", ""),
            "first_name": v.get("first_name", ""),
            "middle_name": v.get("middle_name", ""),
            "organization_name": v.get("organization_name", ""),
            "inn": v.get("inn", ""),
            "kpp": v.get("kpp", ""),
            "passport_series": v.get("passport_series", ""),
            "passport_number": v.get("passport_number", ""),
            "passport_issued_by": v.get("passport_issued_by", ""),
            "passport_issued_on": attempt("passport_issued_on", clean.parse_date, v.get("passport_issued_on", "")),
            "birth_date": attempt("birth_date", clean.parse_date, v.get("birth_date", "")),
        }
        if profile["organization_name"] or (
            len(profile["inn"]) == 10 and not v.get("full_name") and not profile["last_name"]
        ):
            profile["kind"] = SubscriberKind.ORGANIZATION
            if not profile["organization_name"]:
                profile["organization_name"] = v.get("full_name", "")
        elif v.get("full_name") and not profile["last_name"]:
            parts = attempt("full_name", clean.split_full_name, v["full_name"])
            if parts:
                profile["last_name"], profile["first_name"], profile["middle_name"] = parts
        if v.get("passport"):
            parts = attempt("passport", clean.split_passport, v["passport"])
            if parts:
                profile["passport_series"], profile["passport_number"] = parts
        balance = attempt("balance", clean.parse_amount, v.get("balance", ""))
        credit = attempt("credit_limit", clean.parse_amount, v.get("credit_limit", ""))
        price = attempt("price", clean.parse_amount, v.get("price", ""), empty=None)
        discount = attempt("discount_percent", clean.parse_amount, v.get("discount_percent", ""), empty=None)
        contract_date = attempt("contract_date", clean.parse_date, v.get("contract_date", ""))
        status = self.statuses.get(v.get("status", "").strip().lower() or "active")
        if status is None:
            errors.append(
                (
                    "status",
                    "status_unknown",
                    _("Unknown status “%(value)s”: map it in the profile.") % {"value": v.get("status")},
                )
            )
        if credit is not None and credit < 0:
            errors.append(("credit_limit", "credit_negative", _("A credit limit cannot be negative.")))
        if discount is not None and not (0 <= discount <= 100):
            errors.append(("discount_percent", "discount_invalid", _("A discount is a percentage from 0 to 100.")))
        plan, list_fee = None, None
        plan_name = v.get("plan", "").strip()
        if status != "closed":
            if not plan_name:
                errors.append(("plan", "required", _("The plan is empty.")))
            elif plan_name.lower() not in self.plans:
                errors.append(
                    (
                        "plan",
                        "plan_unknown",
                        _("No plan “%(plan)s”: import the plans file first or create it.") % {"plan": plan_name},
                    )
                )
            else:
                plan, list_fee = self.plans[plan_name.lower()]
                if list_fee is None:
                    errors.append(
                        ("plan", "plan_without_price", _("The plan has no price on the day after the cut-over."))
                    )
        monthly_fee = None
        if plan is not None and list_fee is not None:
            if price is not None and price != list_fee:
                monthly_fee = price
            elif discount:
                monthly_fee = (list_fee * (100 - discount) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            if monthly_fee is not None and monthly_fee < 0:
                errors.append(("price", "amount_invalid", _("A price cannot be negative.")))
        branch_name = v.get("branch", "").strip()
        branch_id = self.branches.get(branch_name.lower()) if branch_name else self.default_branch
        if branch_id is None:
            errors.append(
                (
                    "branch",
                    "branch_unknown",
                    _("No branch “%(branch)s”: choose the default branch.") % {"branch": branch_name},
                )
            )
        try:
            profile = clean_profile(profile)
        except ValidationError as exc:
            for name, errs in exc.error_dict.items():
                errors.append((name, errs[0].code or "invalid", errs[0].messages[0]))
        legacy = v.get("legacy_account", "").strip() or None
        if legacy:
            try:
                legacy = check_legacy_account(legacy)
            except ValidationError as exc:
                errors.append(("legacy_account", "legacy_invalid", exc.messages[0]))
        addresses = []
        address_values = None
        if v.get("address"):
            address_values = clean.split_address(v["address"])
            for name in ("city", "street", "house", "building", "apartment"):
                if v.get(name):
                    address_values[name] = v[name]
        elif v.get("city") or v.get("house"):
            address_values = {n: v.get(n, "") for n in ("city", "street", "house", "building", "apartment")}
        if address_values:
            try:
                addresses.append(clean_address(AddressData(**address_values)))
            except ValidationError as exc:
                name, errs = next(iter(exc.error_dict.items()))
                warnings.append(
                    (
                        "address",
                        "address_incomplete",
                        _("The address is incomplete (%(what)s): not imported.") % {"what": name},
                    )
                )
        phones, bad = clean.parse_phones(", ".join(p for p in (v.get("phone", ""), v.get("phone2", "")) if p))
        for part in bad:
            warnings.append(
                ("phone", "phone_invalid", _("“%(value)s” is not a phone number: not imported.") % {"value": part})
            )
        emails = []
        if v.get("email"):
            from abonent.subscribers.actions import clean_contact

            try:
                emails.append(clean_contact("email", v["email"]))
            except ValidationError:
                warnings.append(
                    (
                        "email",
                        "email_invalid",
                        _("“%(value)s” is not an email address: not imported.") % {"value": v["email"]},
                    )
                )
        equipment = None
        if v.get("equipment_model") or v.get("equipment_serial"):
            kind, vendor, model = clean.equipment_of(v.get("equipment_model", "") or v.get("equipment_serial", ""))
            mac = attempt("equipment_mac", clean.parse_mac, v.get("equipment_mac", ""))
            equipment = (kind, vendor or "—", model, v.get("equipment_serial", "").strip()[:100] or None, mac or None)
        login = None
        username = v.get("login", "").strip()
        mac = attempt("mac", clean.parse_mac, v.get("mac", ""))
        static_ip = v.get("static_ip", "").strip() or None
        if static_ip:
            import ipaddress

            try:
                static_ip = str(ipaddress.ip_address(static_ip))
            except ValueError:
                errors.append(
                    ("static_ip", "ip_invalid", _("“%(value)s” is not an IP address.") % {"value": static_ip})
                )
        if username:
            if not v.get("password"):
                errors.append(("password", "required", _("A PPPoE login needs a password.")))
            login = ImportedLogin(
                0,
                LoginKind.PPPOE,
                clean_username(LoginKind.PPPOE, username)[:253],
                v.get("password", ""),
                static_ip,
                status == "active",
            )
        elif mac:
            login = ImportedLogin(0, LoginKind.IPOE_MAC, mac, "", static_ip, status == "active")
        subscriber = ImportedSubscriber(
            branch_id=branch_id,
            profile=profile,
            legacy_account=legacy,
            contract_number=v.get("contract_number", "").strip()[:50],
            contract_signed_on=contract_date,
            closed=status == "closed",
            addresses=addresses,
            phones=phones,
            emails=emails,
            equipment=equipment,
        )
        for name, limit in oversized_values(subscriber):
            errors.append(
                (
                    name,
                    "value_too_long",
                    _("The value is longer than %(limit)s characters: shorten it in the file.") % {"limit": limit},
                )
            )
        if errors:
            for f, code, message in errors:
                self.c.problem(number, old_id, f, code, message, raw)
            self.recon.count("quarantined")
            return None
        for f, code, message in warnings:
            self.c.problem(number, old_id, f, code, message, raw, warning=True)
        digest = content_hash(dict(v))
        return Row(
            number,
            old_id,
            raw,
            digest,
            subscriber,
            balance or Decimal("0.00"),
            credit or Decimal("0.00"),
            plan if status != "closed" else None,
            monthly_fee,
            status,
            login,
            branch_name,
            v.get("nas", "").strip(),
            discount,
            contract_date,
        )

    def _in_pilot(self, row: Row) -> bool:
        pilot = self.job.pilot or {}
        if not pilot:
            return True
        tests = []
        if pilot.get("branches"):
            names = {b.lower() for b in pilot["branches"]}
            ids = {self.branches.get(n) for n in names}
            tests.append(row.branch_name.lower() in names or row.subscriber.branch_id in ids)
        if pilot.get("nas"):
            tests.append(row.nas.lower() in {n.lower() for n in pilot["nas"]})
        if pilot.get("old_ids"):
            tests.append(row.old_id in set(pilot["old_ids"]))
        if pilot.get("accounts"):
            tests.append((row.subscriber.legacy_account or "") in set(pilot["accounts"]))
        return any(tests)

    # --- what must be unique -------------------------------------------------------------------------------
    def _check_unique(self, rows: list[Row]) -> list[Row]:
        checks = [
            (
                "legacy_account",
                lambda r: r.subscriber.legacy_account,
                taken_legacy_accounts,
                "legacy_taken",
                _("Old account number %(value)s is already used."),
            ),
            (
                "contract_number",
                lambda r: r.subscriber.contract_number or None,
                _taken_contracts,
                "contract_number_taken",
                _("Contract number %(value)s is already used."),
            ),
            (
                "login",
                lambda r: r.login.username if r.login and r.login.kind == LoginKind.PPPOE else None,
                lambda values: taken_usernames(LoginKind.PPPOE, values),
                "login_taken",
                _("Login %(value)s is already used."),
            ),
            (
                "mac",
                lambda r: r.login.username if r.login and r.login.kind == LoginKind.IPOE_MAC else None,
                lambda values: taken_usernames(LoginKind.IPOE_MAC, values),
                "login_taken",
                _("MAC %(value)s is already used."),
            ),
            (
                "static_ip",
                lambda r: r.login.static_ip if r.login else None,
                taken_static_ips,
                "ip_taken",
                _("IP address %(value)s is already used."),
            ),
            (
                "equipment_serial",
                lambda r: r.subscriber.equipment[3] if r.subscriber.equipment else None,
                _taken_serials,
                "equipment_taken",
                _("Equipment %(value)s is already registered."),
            ),
            (
                "equipment_mac",
                lambda r: r.subscriber.equipment[4] if r.subscriber.equipment else None,
                _taken_macs,
                "equipment_taken",
                _("Equipment MAC %(value)s is already registered."),
            ),
        ]
        bad: set[int] = set()
        for name, get, taken_fn, code, message in checks:
            seen: dict[str, int] = {}
            for row in rows:
                value = get(row)
                if not value:
                    continue
                if value in seen:
                    self._problem(
                        row,
                        name,
                        code + "_in_file" if code != "login_taken" else "login_repeated",
                        _("%(value)s is also in row %(row)s.") % {"value": value, "row": seen[value]},
                    )
                    bad.add(row.number)
                else:
                    seen[value] = row.number
            taken = taken_fn(list(seen))
            for row in rows:
                value = get(row)
                if value and value in taken and row.number not in bad:
                    self._problem(row, name, code, message % {"value": value})
                    bad.add(row.number)
        return [r for r in rows if r.number not in bad]

    # --- duplicates ---------------------------------------------------------------------------------------
    def _duplicates(self, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        # Against every subscriber here, those an earlier run of this source imported included: a row's own record is
        # matched by its old id (it is not new), so a new row matching one of them is another person's duplicate.
        outcome = find_duplicates(self.job, rows, exclude_subscriber_ids=set())
        keep, merged = [], []
        branch_of_row = {r.number: r.subscriber.branch_id for r in rows}
        targets = {existing for decision, _row, existing in outcome.values() if existing}
        branch_of = dict(Subscriber.objects.filter(pk__in=targets).values_list("pk", "branch_id"))
        for row in rows:
            decision, target_row, existing = outcome.get(row.number, (None, None, None))
            target_branch = branch_of.get(existing) if existing else branch_of_row.get(target_row)
            if decision == DuplicateDecision.MERGE and target_branch not in (None, row.subscriber.branch_id):
                # Money of a row of one branch (a pilot's) must not land on a subscriber of another, out of the
                # sight of that branch's staff: the operator decides by hand.
                self._problem(
                    row,
                    "",
                    "duplicate_other_branch",
                    _("Looks like a subscriber of another branch (%(why)s): not merged, not imported.")
                    % {"why": outcome.why(row.number)},
                )
            elif decision in (None, DuplicateDecision.IMPORT):
                keep.append(row)
            elif decision == DuplicateDecision.SKIP:
                self._problem(
                    row,
                    "",
                    "duplicate_skipped",
                    _("Looks like another subscriber (%(why)s): skipped.") % {"why": outcome.why(row.number)},
                    count=False,
                )
                self.recon.count("skipped_duplicates")
            else:
                row.merged_into = existing
                row.keys = [("row", str(target_row))] if target_row else []
                merged.append(row)
        return keep, merged

    # --- writing ------------------------------------------------------------------------------------------
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
        totals = _opening_sums(self.source, [r.old_id for r in rows])
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
        self.recon.merged(row, opening=_opening_sums(self.source, [row.old_id]).get(row.old_id, Decimal("0.00")))

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
        already = _opening_sums(self.source, [row.old_id]).get(row.old_id, Decimal("0.00"))
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
        self.recon.updated(row, opening=_opening_sums(self.source, [row.old_id]).get(row.old_id, Decimal("0.00")))


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


def _opening_sums(source: str, old_ids: list[str]) -> dict[str, Decimal]:
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
                base, sep, number = key.rpartition(":")
                old_id = keys.get(base) if sep and number.isdigit() else None
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


def _taken_contracts(values: list[str]) -> set[str]:
    return _taken(Contract, "number", values)


def _taken_serials(values: list[str]) -> set[str]:
    return _taken(Equipment, "serial_number", values)


def _taken_macs(values: list[str]) -> set[str]:
    return _taken(Equipment, "mac_address", values)


def _taken(model, column: str, values: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(values), 5000):
        taken.update(matching(model.objects.all(), column, values[start : start + 5000]).values_list(column, flat=True))
    return taken


_unused = (timezone, name_key)
