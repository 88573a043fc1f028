import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Rate traffic over the included volume: `abonent rate_usage [--as-of DATE]` charges every usage period "
        "that ended by DATE (today) and the late usage of periods ended within the lookback."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="rate periods that ended by this date (today)")
        parser.add_argument("--chunk-size", type=int, default=None)
        parser.add_argument("--json", action="store_true", help="print the result as one JSON line")

    def handle(self, *args, **options):
        from abonent.billing.rating.traffic import rate_usage

        try:
            result = rate_usage(options["as_of"], chunk_size=options["chunk_size"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        line = {
            "as_of": result.as_of.isoformat(),
            "subscriptions": result.subscriptions,
            "periods": result.periods,
            "charges": result.charges,
            "adjustments": result.adjustments,
            "amount": str(result.amount),
            "decreased": len(result.decreased),
            "parked": len(result.parked),
            "late_unrated": result.late_unrated,
            "seconds": round(result.seconds, 3),
        }
        if options["json"]:
            self.stdout.write(json.dumps(line))
        else:
            self.stdout.write(
                f"{line['as_of']}: {result.periods} periods rated, {result.charges} charges, "
                f"{result.adjustments} adjustments, {result.amount}, {result.seconds:.1f}s"
            )
        for subscription_id, start in result.decreased:
            self.stderr.write(
                f"  subscription {subscription_id}, period from {start}: usage now rates below the charge"
            )
        for subscription_id, start in result.parked:
            self.stderr.write(f"  subscription {subscription_id}, period from {start}: counters at their limit, parked")
        if result.late_unrated:
            self.stderr.write(f"  {result.late_unrated} days of traffic arrived after the lookback: not charged")
