from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LawfulConfig(AppConfig):
    name = "abonent.integrations.lawful"
    label = "lawful"
    verbose_name = _("Lawful interception")

    def ready(self) -> None:
        from abonent.core import audit

        from . import audit_labels, formats, tasks  # noqa: F401

        # Who law enforcement asked about is for the officer: the console's audit viewers leave these rows out.
        audit.seal_actions("lawful.", permission="lawful.export")
