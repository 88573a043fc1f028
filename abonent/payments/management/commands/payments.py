"""``abonent payments import-statement FILE [--user NAME]``: import a bank statement (1CClientBankExchange) from
the command line, as the console's upload does, and print what its lines became."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Payments operations. `abonent payments import-statement FILE` imports a bank statement."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        statement = sub.add_parser("import-statement", help="import a 1CClientBankExchange statement file")
        statement.add_argument("file", type=Path)
        statement.add_argument("--user", help="the staff user the import is recorded for (default: the system)")

    def handle(self, *args, operation, **options):
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
