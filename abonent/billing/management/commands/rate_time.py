import json

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Rate time online: charge the sessions of subscribers on time plans (safe to run at any time, repeatedly)."

    def add_arguments(self, parser):
        parser.add_argument("--subscriber", type=int, action="append", help="only these subscribers (repeatable)")

    def handle(self, *args, **options):
        from abonent.billing.rating.time import rate_time

        result = rate_time(subscriber_ids=options["subscriber"])
        line = {
            "parts": result.parts,
            "charges": result.charges,
            "amount": str(result.amount),
            "package_seconds": result.package_seconds,
            "skipped": len(result.skipped),
        }
        self.stdout.write(json.dumps(line))
