from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TelephonyConfig(AppConfig):
    name = "abonent.integrations.telephony"
    label = "telephony"
    verbose_name = _("Telephony")

    def ready(self) -> None:
        from . import panels, seeding  # noqa: F401
