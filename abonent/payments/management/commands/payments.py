"""``abonent payments …``: payments work from the command line.

abonent payments import-statement FILE [--user NAME]
abonent payments agent-report --agent CODE [--date YYYY-MM-DD] [--csv]
abonent payments agent-register --agent CODE --file REGISTER.csv [--date YYYY-MM-DD]
"""

import csv
import datetime as dt
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Payments operations: import a bank statement, an agent's daily reconciliation report, and its register "
        "compared with ours."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        statement = sub.add_parser("import-statement", help="import a 1CClientBankExchange statement file")
        statement.add_argument("file", type=Path)
        statement.add_argument("--user", help="the staff user the import is recorded for (default: the system)")
        report = sub.add_parser("agent-report", help="a payment agent's day: payments, commission, net to transfer")
        report.add_argument("--agent", required=True, help="the agent's code")
        report.add_argument("--date", type=dt.date.fromisoformat, help="the day, in the agent's time zone (today)")
        report.add_argument("--csv", action="store_true", help="the payments as CSV (;) instead of a summary")
        register = sub.add_parser("agent-register", help="compare an agent's register (txn_id;sum;account;date)")
        register.add_argument("--agent", required=True, help="the agent's code")
        register.add_argument("--file", required=True, type=Path, help="the register, UTF-8 CSV separated by ;")
        register.add_argument("--date", type=dt.date.fromisoformat, help="only this day (default: the register's)")

    def handle(self, *args, operation, **options):
        from abonent.payments.models import Agent

        if operation == "import-statement":
            self._import_statement(options)
            return

        agent = Agent.objects.filter(code=options["agent"]).first()
        if agent is None:
            raise CommandError(f"no payment agent {options['agent']!r}")
        if operation == "agent-report":
            self._report(agent, options)
        else:
            self._register(agent, options)

    def _report(self, agent, options):
        from abonent.payments.selectors import agents as selectors

        day = options["date"] or selectors.agent_today(agent)
        report = selectors.agent_day_report(agent, day)
        if options["csv"]:
            writer = csv.writer(self.stdout, delimiter=";", lineterminator="\n")
            for row in selectors.report_rows(report):
                writer.writerow(row)
            return
        self.stdout.write(
            f"{agent.code} {day}: {report.count} payments, sum {report.total:.2f}, commission "
            f"{report.commission:.2f}, to transfer {report.net:.2f}; {len(report.late)} of other days arrived late"
        )

    def _register(self, agent, options):
        from abonent.payments.selectors import agents as selectors

        try:
            text = options["file"].read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from exc
        result = selectors.compare_register(agent, text, options["date"])
        out = self.stdout
        out.write(f"days: {', '.join(str(d) for d in result.days) or '-'}; matched {len(result.matched)}")
        for row in result.only_theirs:
            out.write(f"only in the register: line {row.line} txn_id={row.txn_id} sum={row.amount} {row.account}")
        for payment in result.only_ours:
            out.write(f"only with us: txn_id={payment.external_id} prv_txn={payment.pk} sum={payment.amount}")
        for row, payment in result.differ:
            out.write(
                f"differs: txn_id={row.txn_id} register {row.amount} {row.account}, "
                f"ours {payment.amount} {payment.account_ref} (prv_txn={payment.pk})"
            )
        for number, line in result.unreadable:
            out.write(f"unreadable line {number}: {line}")
        if not result.clean:
            sys.exit(1)

    def _import_statement(self, options):
        from abonent.payments.actions import do_import_statement

        path: Path = options["file"]
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if user is None:
                raise CommandError(f"no active user {options['user']!r}")
        try:
            result = do_import_statement(content, filename=path.name, acting_user=user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        s = result.statement
        if not result.created:
            self.stdout.write(f"{path.name}: already imported as statement {s.pk} on {s.uploaded_at:%Y-%m-%d %H:%M}")
            return
        self.stdout.write(
            f"statement {s.pk} ({s.encoding}, {s.account}): documents {s.documents}, credited {s.credited} "
            f"({s.credited_amount}), suspense {s.suspense}, ambiguous {s.ambiguous} ({s.suspense_amount} in suspense), "
            f"broken {s.broken}, ignored {s.ignored}, already imported {s.repeated}"
        )
