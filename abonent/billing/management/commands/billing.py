import contextlib
import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from abonent.core import clock


class Command(BaseCommand):
    help = "Billing operations. `abonent billing run [--date D] [--until D]` charges everything due."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        run = sub.add_parser("run", help="charge every active subscription for the periods due up to a date")
        run.add_argument("--date", type=dt.date.fromisoformat, help="charge what is due up to this date (today)")
        run.add_argument(
            "--until",
            type=dt.date.fromisoformat,
            help="run day by day from --date to this date (simulates missed daily runs)",
        )
        run.add_argument("--chunk-size", type=int, default=None)
        run.add_argument("--workers", type=int, default=None, help="parallel chunk workers on PostgreSQL (2)")
        run.add_argument("--json", action="store_true", help="print one JSON line per day")

    def handle(self, *args, operation, **options):
        from abonent.billing.actions import do_finish_due_freezes
        from abonent.billing.engine import run_billing

        start = options["date"] or clock.today()
        until = options["until"] or start
        if until < start:
            raise CommandError("--until is before --date")
        day = start
        while day <= until:
            with clock.travel_to(day) if day != clock.today() else contextlib.nullcontext():
                do_finish_due_freezes()
            try:
                result = run_billing(day, chunk_size=options["chunk_size"], workers=options["workers"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            line = {
                "date": day.isoformat(),
                "charges": result.charges,
                "amount": str(result.amount),
                "subscriptions": result.subscriptions,
                "parked": len(result.parked),
                "seconds": round(result.seconds, 3),
            }
            self.stdout.write(
                json.dumps(line)
                if options["json"]
                else f"{day}: {result.charges} charges, {result.amount}, {len(result.parked)} parked, "
                f"{result.seconds:.1f}s"
            )
            for subscription_id, why, _reason in result.parked:
                self.stderr.write(f"  parked subscription {subscription_id}: {why}")
            day += dt.timedelta(days=1)
