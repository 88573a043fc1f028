"""Two causes of a transition (a change of groups; an account closed), and the money states of accounts closed
before closing released them: set to ``active`` with a ``closed`` transition, as ``actions.release_closed`` does
now (they sat in the dunning queue and RADIUS's sets for good, since the sweep reads only open accounts)."""

from django.db import migrations, models
from django.utils import timezone

MONEY_STATES = ["warned", "restricted", "suspended", "frozen"]


def release_closed(apps, schema_editor):
    AccessState = apps.get_model("dunning", "AccessState")
    AccessTransition = apps.get_model("dunning", "AccessTransition")
    now = timezone.now()
    rows = AccessState.objects.filter(state__in=MONEY_STATES, subscriber__status="closed")
    AccessTransition.objects.bulk_create(
        [
            AccessTransition(subscriber_id=sid, from_state=state, to_state="active", at=now, cause="closed")
            for sid, state in rows.values_list("subscriber_id", "state")
        ],
        batch_size=2000,
    )
    rows.update(
        state="active", since=now, restricted_since=None, runout_on=None, owed=0, reminded_for=None,
        reminded_days=None, evaluated_at=now,
    )  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accesstransition",
            name="cause",
            field=models.CharField(
                choices=[
                    ("sweep", "Periodic check"),
                    ("balance", "Balance changed"),
                    ("subscription", "Subscription changed"),
                    ("exemption", "Exemption changed"),
                    ("staff", "Staff"),
                    ("groups", "Groups changed"),
                    ("closed", "Account closed"),
                ],
                max_length=12,
            ),
        ),
        migrations.RunPython(release_closed, migrations.RunPython.noop),
    ]
