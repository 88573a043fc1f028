import datetime as dt
import ipaddress

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from abonent.api.actions import do_create_radius_token
from abonent.core import clock
from abonent.network.models import Nas
from abonent.staff.actions import do_create_staff_user
from abonent.staff.models import StaffUser
from abonent.staff.permissions import Role


def _find_nas(key: str) -> Nas:
    """A NAS by its name, its address or its id, as the operator types it."""
    try:
        found = Nas.objects.filter(ip_address=str(ipaddress.ip_address(key))).first()
    except ValueError:
        found = Nas.objects.filter(name=key).first()
        if found is None and key.isdigit():
            found = Nas.objects.filter(pk=int(key)).first()
    if found is None:
        raise CommandError(f"no NAS '{key}' (give its name, IP address or id as in Console → Network → NAS)")
    return found


class Command(BaseCommand):
    help = (
        "Create the API token FreeRADIUS's rlm_rest sends (deploy/freeradius/), bound to the NAS it speaks for, "
        "and print it once. The token opens only the RADIUS endpoints, and only for these NAS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--nas",
            action="append",
            required=True,
            metavar="NAS",
            help="a NAS this FreeRADIUS serves: its name, IP address or id; repeat for each",
        )
        parser.add_argument("--user", default="freeradius", help="the service account (default: freeradius)")
        parser.add_argument("--name", default="FreeRADIUS", help="what the token is for, e.g. 'FreeRADIUS radius1'")
        parser.add_argument("--days", type=int, default=None, help="expire after this many days (default: never)")

    def handle(self, *args, nas, user, name, days, **options):
        servers = list({item.pk: item for item in map(_find_nas, nas)}.values())
        expires = clock.now() + dt.timedelta(days=days) if days else None
        try:
            with transaction.atomic():
                account = StaffUser.objects.filter(username=user).first()
                if account is None:
                    # The role is the smallest there is: the bound token opens the RADIUS endpoints only
                    # (api.auth.TokenAuth), whatever the role.
                    account = do_create_staff_user(
                        username=user, password=None, role=Role.CASHIER, is_service_account=True
                    )
                token, plaintext = do_create_radius_token(user=account, name=name, nas=servers, expires_at=expires)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        bound = ", ".join(f"{item.name} ({item.ip_address})" for item in servers)
        self.stderr.write(f"Token '{token.name}' of {account.username} for NAS {bound}, shown once:")
        self.stdout.write(plaintext)
