"""``abonent import subscribers|plans|payments FILE --profile mikbill [--dry-run] [--source NAME] [--cutover DATE]
[--pilot-branch ...]``: the migration from the terminal, with a progress bar on stderr and the report at the end.

Exit codes: 0 imported (or dry run done) with no row problems; 1 done, but some rows were quarantined (see the
report); 2 refused before anything was written (the file, the mapping, the options).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from abonent.core.models import Branch
from abonent.imports import actions, selectors
from abonent.imports.clean import RowProblem, parse_date
from abonent.imports.models import DuplicateDecision, Entity

EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED = 0, 1, 2


class Command(BaseCommand):
    help = "Import subscribers, plans or payment history exported by the old billing (docs/imports.md)."

    def add_arguments(self, parser):
        parser.add_argument("entity", choices=Entity.values)
        parser.add_argument("file")
        parser.add_argument("--profile", required=True, help="mikbill, abills or a saved profile's name")
        parser.add_argument("--dry-run", action="store_true", help="write nothing; print what the import would do")
        parser.add_argument("--source", help="the old system's name (default: the profile's)")
        parser.add_argument("--cutover", help="the last day the old system has charged for (subscribers)")
        parser.add_argument("--sheet", default="", help="the XLSX sheet (default: the first)")
        parser.add_argument("--branch", help="branch (code or name) of rows whose file names none")
        parser.add_argument("--duplicates", choices=DuplicateDecision.values, default=DuplicateDecision.SKIP)
        parser.add_argument("--pilot-branch", action="append", default=[], help="import only this branch's rows")
        parser.add_argument("--pilot-nas", action="append", default=[])
        parser.add_argument("--pilot-ids", help="import only these old ids (comma-separated)")
        parser.add_argument("--user", help="the staff user to record as the actor (default: the system)")

    def handle(self, *args, **opts):
        try:
            code = self._run(opts)
        except (ValidationError, RowProblem) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [exc.message]
            self.stderr.write(self.style.ERROR("\n".join(messages)))
            sys.exit(EXIT_REFUSED)
        if code:
            sys.exit(code)

    def _run(self, opts) -> int:
        entity = opts["entity"]
        profile = selectors.load_profile(opts["profile"], entity)
        if profile is None:
            raise CommandError(f"no profile {opts['profile']!r} for {entity}")
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"no user {opts['user']!r}")
        branch = None
        if opts["branch"]:
            branch = (
                Branch.objects.filter(code=opts["branch"]).first() or Branch.objects.filter(name=opts["branch"]).first()
            )
            if branch is None:
                raise CommandError(f"no branch {opts['branch']!r}")
        cutover = parse_date(opts["cutover"]) if opts["cutover"] else None
        path = Path(opts["file"])
        job = actions.do_create_import_job(
            entity=entity,
            file_name=path.name,
            content=path.read_bytes(),
            source=opts["source"] or opts["profile"],
            sheet=opts["sheet"],
            acting_user=user,
        )
        pilot = {
            "branches": opts["pilot_branch"],
            "nas": opts["pilot_nas"],
            "old_ids": [v for v in (opts["pilot_ids"] or "").split(",") if v.strip()],
        }
        job = actions.do_configure_job(
            job,
            mapping=profile["mapping"],
            options=profile["options"],
            profile=profile.get("profile"),
            cutover_date=cutover,
            duplicate_default=opts["duplicates"],
            pilot=pilot,
            default_branch=branch,
            acting_user=user,
        )
        job = actions.run_job(job, dry_run=opts["dry_run"], acting_user=user, progress=self._bar)
        sys.stderr.write("\n")
        report = selectors.report(job, dry_run=opts["dry_run"])
        self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2, default=str))
        problems = list(selectors.issues(job, dry_run=opts["dry_run"]).filter(is_warning=False))
        for issue in selectors.issues(job, dry_run=opts["dry_run"])[:1000]:
            line = f"row {issue.row_number} [{issue.old_id}] {issue.field} {issue.code}: {issue.message}"
            self.stdout.write(_printable(line))
        return EXIT_PROBLEMS if problems else EXIT_OK

    def _bar(self, done: int, total: int) -> None:
        width = 40
        filled = width * done // total if total else width
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()


_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """The file's values shown, not obeyed: an escape sequence in a cell would retitle or clear the terminal."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


_unused = dt
