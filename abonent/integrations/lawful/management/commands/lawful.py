"""``abonent lawful``: the lawful-interception export from the command line (docs/lawful-export.md).

- ``export``: record a request as the given officer and make its ZIP now (the SORM vendor's scheduled feed calls
  it); ``--output`` copies the file out, which is audited as a download.
- ``purge``: delete the files past their time now (the worker does it every 10 minutes).
- ``audit``: the sealed audit rows of the lawful exports, one JSON object a line, for whoever inspects the officer.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone


def _when(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not an ISO date or time: {value!r}") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not an ISO date: {value!r}") from None


class Command(BaseCommand):
    help = "Lawful-interception exports (SORM): export, purge, audit. See docs/lawful-export.md."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        export = sub.add_parser("export", help="record a request and make its export now")
        export.add_argument("--as", dest="username", required=True, help="the lawful-interception officer's login")
        export.add_argument("--basis-kind", required=True, help="court_order, agency_request, investigator_request …")
        export.add_argument("--basis-number", required=True)
        export.add_argument("--basis-date", required=True, type=_day, help="YYYY-MM-DD")
        export.add_argument("--from", dest="period_start", required=True, type=_when, help="ISO time (local if naive)")
        export.add_argument("--to", dest="period_end", required=True, type=_when)
        for name in ("account", "login", "phone", "ip", "mac"):
            export.add_argument(f"--{name}", action="append", default=[], help="repeatable")
        export.add_argument("--at", dest="ip_at", type=_when, help="the instant an --ip was held")
        export.add_argument("--all", dest="everyone", action="store_true", help="every subscriber (the full feed)")
        export.add_argument("--format", default="vas-experts-sorm3")
        export.add_argument("--output", help="copy the ZIP here (audited as a download)")
        sub.add_parser("purge", help="delete the exports past their time")
        trail = sub.add_parser("audit", help="print the lawful exports' audit rows (JSON lines)")
        trail.add_argument("--since", type=_when, help="only rows from this time on")

    def handle(self, *args, operation, **options):
        return getattr(self, f"_{operation}")(**options)

    def _export(self, *, username, output, **options):
        from abonent.staff.models import StaffUser

        from ...actions import do_download_export, do_generate_export, do_request_export

        officer = StaffUser.objects.filter(username=username, is_active=True).first()
        if officer is None:
            raise CommandError(f"no active staff user {username!r}")
        try:
            request = do_request_export(
                acting_user=officer,
                basis_kind=options["basis_kind"],
                basis_number=options["basis_number"],
                basis_date=options["basis_date"],
                period_start=options["period_start"],
                period_end=options["period_end"],
                accounts=options["account"],
                logins=options["login"],
                phones=options["phone"],
                ips=options["ip"],
                ip_at=options["ip_at"],
                macs=options["mac"],
                everyone=options["everyone"],
                format=options["format"],
                enqueue=False,
            )
        except PermissionDenied as exc:
            raise CommandError(f"{username}: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(m)}" for field, m in exc.message_dict.items())
            raise CommandError(problems) from None
        request = do_generate_export(request.pk)
        summary = {
            "request": request.pk,
            "status": request.status,
            "rows": request.row_counts,
            "sha256": request.file_sha256,
            "error": request.error,
        }
        if output and request.status == "done":
            with do_download_export(request, acting_user=officer) as source, open(output, "wb") as target:
                shutil.copyfileobj(source, target)
            summary["output"] = output
        self.stdout.write(json.dumps(summary, ensure_ascii=False, sort_keys=True))
        if request.status != "done":
            raise CommandError(request.error or "the export failed")

    def _purge(self, **options):
        from ...actions import do_purge_expired_exports

        self.stdout.write(json.dumps({"deleted": do_purge_expired_exports()}))

    def _audit(self, *, since, **options):
        from abonent.core.models import AuditEvent

        events = AuditEvent.objects.filter(action__startswith="lawful.").order_by("created_at", "pk")
        if since is not None:
            events = events.filter(created_at__gte=since)
        for event in events.iterator(chunk_size=1000):
            row = {
                "at": event.created_at.isoformat(),
                "actor": event.actor_label,
                "action": event.action,
                "request": event.object_id,
                "before": event.before,
                "after": event.after,
                "ip": event.ip_address,
            }
            self.stdout.write(json.dumps(row, ensure_ascii=False, sort_keys=True))
