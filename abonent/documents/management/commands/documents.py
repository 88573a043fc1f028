"""``abonent documents generate --month 2026-11`` issues the month's documents for every organisation (what the
worker does on the run day), printing the run's counts; ``abonent documents export --month 2026-11 [-o FILE]``
writes the month's 1C EnterpriseData XML (to stdout without ``-o``)."""

import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Month-end documents: generate (every organisation) and export (1C EnterpriseData XML)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        generate = sub.add_parser("generate", help="issue a closed month's documents for every organisation")
        generate.add_argument("--month", required=True, help="YYYY-MM, a month that has ended")
        export = sub.add_parser("export", help="the month's documents and payments as 1C EnterpriseData XML")
        export.add_argument("--month", required=True, help="YYYY-MM")
        export.add_argument("-o", "--output", help="file to write (default: stdout)")

    def handle(self, *args, operation, month, **options):
        from abonent.documents.forms import parse_month

        try:
            first_day = parse_month(month)
        except ValidationError as exc:
            raise CommandError(f"--month: {' '.join(exc.messages)}") from None
        if operation == "generate":
            self._generate(first_day)
        else:
            self._export(first_day, options.get("output"))

    def _generate(self, month):
        from abonent.documents.actions import carry_out_run, do_start_document_run

        try:
            run = do_start_document_run(month, acting_user=None)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        run = carry_out_run(run.pk)
        result = {"run": run.pk, "month": month.isoformat()[:7], "status": run.status, "subscribers": run.total}
        result |= {"done": run.done, "failed": run.failed, "issued": run.issued}
        self.stdout.write(json.dumps(result))
        if run.failed:
            for error in run.errors:
                self.stderr.write(f"subscriber {error['subscriber']}: {error['error']}")
            sys.exit(1)

    def _export(self, month, output):
        from abonent.documents import export_1c

        data, summary = export_1c.build(month)
        if output:
            with open(output, "wb") as fh:
                fh.write(data)
            self.stderr.write(json.dumps(summary))
        else:
            sys.stdout.buffer.write(data)
