import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Ledger checks. `abonent ledger verify` recomputes every balance and exits 1 on any mismatch."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        verify = sub.add_parser("verify", help="check every transaction balances and every cached balance matches")
        verify.add_argument(
            "--no-record", action="store_true", help="do not keep the result for the console's ledger page"
        )

    def handle(self, *args, operation, **options):
        from abonent.billing.ledger import verify

        if options["no_record"]:
            problems = verify()
        else:
            from abonent.billing.runs.models import VerificationSource
            from abonent.billing.runs.verification import verify_and_record

            _row, problems = verify_and_record(source=VerificationSource.COMMAND)
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            self.stderr.write(f"ledger verify: {len(problems)} problem(s)")
            sys.exit(1)
        self.stdout.write("ledger verify: ok")
