"""``Ticket.public_updated_at``: the last change the subscriber can see. Existing tickets take ``updated_at`` (an
internal note before this migration may have moved it; nothing better is known)."""

from django.db import migrations, models
from django.db.models import F


def fill(apps, schema_editor):
    Ticket = apps.get_model("helpdesk", "Ticket")
    Ticket.objects.update(public_updated_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("helpdesk", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="public_updated_at",
            field=models.DateTimeField(null=True, verbose_name="updated for the subscriber"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="ticket",
            name="public_updated_at",
            field=models.DateTimeField(verbose_name="updated for the subscriber"),
        ),
    ]
