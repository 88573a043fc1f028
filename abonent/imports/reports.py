"""The reconciliation report: counts per entity in the file and imported, the sum of balances old (the file) and new
(what the ledger holds from the opening transactions, read back inside the run's transaction), subscribers with
individual prices, debtors, privileges (credit limits, discounts), statuses, duplicates, and problems by code."""

from __future__ import annotations

from decimal import Decimal

from .models import DuplicateGroup

MAX_LISTED = 100


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class Reconciliation:
    def __init__(self, job, *, dry_run: bool):
        self.job = job
        self.dry_run = dry_run
        self.rows = {
            "read": 0,
            "outside_pilot": 0,
            "new": 0,
            "updated": 0,
            "unchanged": 0,
            "merged": 0,
            "skipped_duplicates": 0,
            "quarantined": 0,
        }
        self.entities = {
            name: {"in_file": 0, "imported": 0}
            for name in (
                "subscribers",
                "contracts",
                "addresses",
                "contacts",
                "subscriptions",
                "logins",
                "equipment",
                "opening_balances",
            )
        }
        self.old_total = Decimal("0.00")
        self.new_total = Decimal("0.00")
        self.individual: list[str] = []
        self.individual_count = 0
        self.debtors = [0, Decimal("0.00")]
        self.credit = [0, Decimal("0.00")]
        self.discounts = 0
        self.statuses: dict[str, int] = {}
        self.written_rows: list = []

    def count(self, name: str, n: int = 1) -> None:
        self.rows[name] += n

    def _linked(self, row, *, opening: Decimal, counted_as: str, written: bool) -> None:
        self.rows[counted_as] += 1
        self.old_total += row.balance
        self.new_total += opening
        self.statuses[row.status] = self.statuses.get(row.status, 0) + 1
        if row.monthly_fee is not None:
            self.individual_count += 1
            if len(self.individual) < MAX_LISTED:
                self.individual.append(row.old_id)
        if row.balance < 0:
            self.debtors[0] += 1
            self.debtors[1] += row.balance
        if row.credit_limit > 0:
            self.credit[0] += 1
            self.credit[1] += row.credit_limit
        if row.discount:
            self.discounts += 1
        s = row.subscriber
        carried = {
            "subscribers": 1,
            "contracts": 1,
            "addresses": len(s.addresses),
            "contacts": len(s.phones) + len(s.emails),
            "subscriptions": 1 if row.plan is not None else 0,
            "logins": 1 if row.login is not None else 0,
            "equipment": 1 if s.equipment else 0,
            "opening_balances": 1 if row.balance else 0,
        }
        for name, n in carried.items():
            self.entities[name]["in_file"] += n
            if written:
                self.entities[name]["imported"] += n

    def imported(self, row, *, opening: Decimal) -> None:
        self.written_rows.append(row)
        self._linked(row, opening=opening, counted_as="new", written=True)

    def updated(self, row, *, opening: Decimal) -> None:
        self._linked(row, opening=opening, counted_as="updated", written=False)

    def unchanged(self, row, *, opening: Decimal | None = None) -> None:
        # Unchanged since the last import: the ledger held this row's balance then and nothing the import did since
        # has changed it, so its opening transactions are read back in one query at the end (``build``).
        self._unchanged = getattr(self, "_unchanged", [])
        self._unchanged.append(row)
        self._linked(row, opening=Decimal("0.00"), counted_as="unchanged", written=False)

    def merged(self, row, *, opening: Decimal) -> None:
        self.old_total += 0
        self.rows["merged"] += 1
        self.old_total += row.balance
        self.new_total += opening

    def build(self, *, opening_totals=None) -> dict:
        from .run_subscribers import opening_sums

        unchanged = getattr(self, "_unchanged", [])
        if unchanged:
            sums = opening_sums(self.job.source, [r.old_id for r in unchanged])
            self.new_total += sum(sums.values(), Decimal("0.00"))
        groups = list(DuplicateGroup.objects.filter(job=self.job).order_by("id")[:MAX_LISTED])
        return {
            "entity": self.job.entity,
            "source": self.job.source,
            "dry_run": self.dry_run,
            "cutover_date": self.job.cutover_date.isoformat() if self.job.cutover_date else None,
            "pilot": self.job.pilot,
            "rows": self.rows,
            "entities": self.entities,
            "balances": {
                "old_total": _money(self.old_total),
                "new_total": _money(self.new_total),
                "difference": _money(self.new_total - self.old_total),
            },
            "individual_prices": {"count": self.individual_count, "old_ids": self.individual},
            "debtors": {"count": self.debtors[0], "sum": _money(self.debtors[1])},
            "privileges": {
                "credit_limits": {"count": self.credit[0], "sum": _money(self.credit[1])},
                "discounts": {"count": self.discounts},
            },
            "statuses": self.statuses,
            "duplicates": [
                {
                    "kind": g.kind,
                    "key": g.key,
                    "rows": g.row_numbers,
                    "old_ids": g.old_ids,
                    "existing": g.existing_subscriber_ids,
                    "decision": g.decision or self.job.duplicate_default,
                }
                for g in groups
            ],
        }
