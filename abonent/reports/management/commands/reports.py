import datetime as dt
import sys
import time

from django.core.management.base import BaseCommand, CommandError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"--from: a date as YYYY-MM-DD, not {text!r}") from exc


class Command(BaseCommand):
    help = (
        "The reports' summary tables. `abonent reports rebuild [--from DATE]` counts them again from the ledger, "
        "`abonent reports rollup` adds what is new, `abonent reports verify` compares them with the ledger and "
        "exits 1 on any difference."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        rebuild = sub.add_parser("rebuild", help="count the facts again from the ledger (all, or from a day on)")
        rebuild.add_argument("--from", dest="since", type=_date, default=None, help="the first day to count again")
        sub.add_parser("rollup", help="add what was charged and paid since the last rollup")
        sub.add_parser("verify", help="prove the facts equal the ledger to the kopeck")

    def handle(self, *args, operation, **options):
        from abonent.reports import facts

        started = time.monotonic()
        if operation == "rebuild":
            result = facts.do_rebuild_facts(since=options["since"])
            self.stdout.write(
                f"reports rebuild: facts up to charge {result.charges}, transaction {result.transactions} "
                f"in {time.monotonic() - started:.1f} s"
            )
        elif operation == "rollup":
            result = facts.do_roll_up_facts()
            state = "moved" if result.moved else "not moved (transactions still running)"
            self.stdout.write(f"reports rollup: {state}, charge {result.charges}, transaction {result.transactions}")
        else:
            found = facts.verify_facts()
            for difference in found.differences:
                self.stderr.write(difference)
            if not found.ok:
                self.stderr.write(f"reports verify: {len(found.differences)} difference(s)")
                sys.exit(1)
            self.stdout.write(f"reports verify: ok (revenue {found.revenue}, payments {found.payments})")
