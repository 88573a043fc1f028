from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from abonent.core import secrets
from abonent.core.key_rotation import rotate_field_key


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (NAS shared secrets, PPPoE and hotspot passwords) under ABONENT_FIELD_KEY, "
        "decrypting those still under a key of ABONENT_FIELD_KEY_OLD. Safe to run again: values already under the "
        'new key are skipped. Procedure: docs/operations.md, "Rotating the field key".'
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would be re-encrypted, write nothing")
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")

    def handle(self, *args, dry_run, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if not settings.ABONENT_FIELD_KEY_OLD and not dry_run:
            raise CommandError(
                "ABONENT_FIELD_KEY_OLD is not set: set ABONENT_FIELD_KEY to the new key and ABONENT_FIELD_KEY_OLD to "
                "the key the values are under now (SECRET_KEY's value if ABONENT_FIELD_KEY was unset)"
            )
        if secrets.current_key_is_old():
            # Every value would count as "already under the new key", which the procedure reads as a finished
            # rotation, and the key meant to be retired would stay the one everything is encrypted under.
            if settings.ABONENT_FIELD_KEY:
                problem = "the key in ABONENT_FIELD_KEY is also listed in ABONENT_FIELD_KEY_OLD"
            else:
                problem = (
                    "ABONENT_FIELD_KEY is not set, so SECRET_KEY is the field key, and its value is listed in "
                    "ABONENT_FIELD_KEY_OLD"
                )
            raise CommandError(
                f"{problem}: nothing would be rotated. Set ABONENT_FIELD_KEY to the new key and list only the keys "
                "being retired in ABONENT_FIELD_KEY_OLD, restart the services, and run this again."
            )
        reports = rotate_field_key(batch_size=batch_size, dry_run=dry_run)
        verb = "to re-encrypt" if dry_run else "re-encrypted"
        unreadable = 0
        for report in reports:
            self.stdout.write(
                f"{report.name}: {report.reencrypted} {verb}, {report.current} already under the new key, "
                f"{len(report.unreadable)} unreadable"
            )
            if report.unreadable:
                unreadable += len(report.unreadable)
                ids = ", ".join(map(str, report.unreadable[:50])) + (" …" if len(report.unreadable) > 50 else "")
                self.stderr.write(
                    f"{report.name}: {len(report.unreadable)} values decrypt under neither ABONENT_FIELD_KEY nor "
                    f"ABONENT_FIELD_KEY_OLD; left as they are (ids {ids}). Add the key they are under to "
                    "ABONENT_FIELD_KEY_OLD and run again, or set those secrets and passwords anew."
                )
        if dry_run:
            self.stdout.write("Dry run: nothing written.")
        if unreadable:
            raise CommandError(f"{unreadable} values could not be decrypted (see above)")
