# Per-address allowances count an IPv6 client by its /64 (portal.lockout.network_of).

import datetime as dt
import ipaddress

from django.db import migrations, models
from django.utils import timezone


def _network(raw):
    # A copy of portal.lockout.network_of as it was when this migration was written.
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return ""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 4:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def fill_recent(apps, schema_editor):
    # Only the last day's rows still count toward any allowance (an hour at most, or the lock-out window).
    LoginAttempt = apps.get_model("portal", "LoginAttempt")
    since = timezone.now() - dt.timedelta(days=1)
    rows = LoginAttempt.objects.filter(attempted_at__gte=since, ip_address__isnull=False)
    for pk, ip in rows.values_list("pk", "ip_address").iterator():
        LoginAttempt.objects.filter(pk=pk).update(network=_network(ip))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_confirm_contact"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="loginattempt",
            name="portal_attempt_ip_idx",
        ),
        migrations.AddField(
            model_name="loginattempt",
            name="network",
            field=models.CharField(blank=True, default="", max_length=43),
        ),
        migrations.AddIndex(
            model_name="loginattempt",
            index=models.Index(fields=["network", "attempted_at"], name="portal_attempt_net_idx"),
        ),
        migrations.RunPython(fill_recent, migrations.RunPython.noop),
    ]
