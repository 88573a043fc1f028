from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "abonent.billing"
    label = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        from . import events, panels, seeding, subscriber_list, tasks  # noqa: F401
