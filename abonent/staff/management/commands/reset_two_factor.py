from django.core.management.base import BaseCommand, CommandError

from abonent.staff.models import StaffUser
from abonent.staff.two_factor import do_reset_two_factor, two_factor_required


class Command(BaseCommand):
    help = (
        "Remove a staff user's authenticator and recovery codes (a lost phone), for when no administrator can "
        "sign in to do it in the admin. Written to the audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="login of the staff user")
        parser.add_argument("--reason", default="", help="why, for the audit log (e.g. a ticket number)")

    def handle(self, *args, user, reason, **options):
        account = StaffUser.objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"no staff user '{user}'")
        if not do_reset_two_factor(account, acting_user=None, reason=reason or "abonent reset_two_factor"):
            self.stdout.write(f"{account.username} has no two-factor authentication; nothing to reset.")
            return
        then = "sets it up again at the next login" if two_factor_required(account) else "signs in with the password"
        self.stdout.write(f"Two-factor authentication reset for {account.username}, who {then}.")
