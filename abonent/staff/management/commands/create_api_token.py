import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from abonent.core import clock
from abonent.staff.actions import do_create_api_token, do_create_staff_user
from abonent.staff.models import StaffUser
from abonent.staff.permissions import Role


class Command(BaseCommand):
    help = "Create an API token for a staff user (or a new service account) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="login of the staff user or service account")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'CRM integration'")
        parser.add_argument("--days", type=int, default=None, help="expire after this many days (default: never)")
        parser.add_argument(
            "--create-service-account",
            choices=[r.value for r in Role],
            metavar="ROLE",
            help="create the user as a service account with this role if it does not exist",
        )

    def handle(self, *args, user, name, days, create_service_account, **options):
        account = StaffUser.objects.filter(username=user).first()
        if account is None:
            if not create_service_account:
                raise CommandError(f"no staff user '{user}'; pass --create-service-account ROLE to create one")
            account = do_create_staff_user(
                username=user, password=None, role=create_service_account, is_service_account=True
            )
        if not account.is_active:
            raise CommandError(f"staff user '{user}' is deactivated")
        expires = clock.now() + dt.timedelta(days=days) if days else None
        token, plaintext = do_create_api_token(user=account, name=name, expires_at=expires)
        self.stderr.write(f"Token '{token.name}' for {account.username} ({account.get_role_display()}), shown once:")
        self.stdout.write(plaintext)
