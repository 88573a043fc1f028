"""The plan of a subscribers file, which is all a dry run does and what a real run writes: every row cleaned into a
``Row`` against the reference data (plans, branches, statuses), the pilot's subset, what must be unique checked
against the database with set-based look-ups, and the duplicates found and decided. ``SubscriberRun``
(run_subscribers.py) adds the writing; both runs plan with this one code, so they cannot drift."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.catalog.models import Plan
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core.bulk_load import matching
from abonent.core.models import Branch
from abonent.network.bulk_import import (
    ImportedLogin,
    clean_username,
    taken_static_ips,
    taken_usernames,
)
from abonent.network.models import LoginKind
from abonent.subscribers.actions import AddressData, clean_address, clean_profile
from abonent.subscribers.actions.imports import (
    ImportedSubscriber,
    check_legacy_account,
    oversized_values,
    taken_legacy_accounts,
)
from abonent.subscribers.models import Contract, Equipment, Subscriber, SubscriberKind
from abonent.subscribers.search import name_key

from . import clean
from .duplicates import find_duplicates
from .engine import content_hash
from .models import DuplicateDecision

MAX_LISTED = 100


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


class SubscriberPlan:
    """The planning half of ``SubscriberRun``: it reads and reports (``self._problem``, ``self.recon``) but writes
    no domain table."""

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
