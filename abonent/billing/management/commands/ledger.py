import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Ledger checks. `abonent ledger verify` recomputes every balance and exits 1 on any mismatch."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        sub.add_parser("verify", help="check every transaction balances and every cached balance matches")

    def handle(self, *args, operation, **options):
        from abonent.billing.ledger import verify

        problems = verify()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            self.stderr.write(f"ledger verify: {len(problems)} problem(s)")
            sys.exit(1)
        self.stdout.write("ledger verify: ok")
