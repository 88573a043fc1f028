from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "abonent.payments"
    label = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from . import events, panels, seeding, system_checks, tasks  # noqa: F401
        from .gateways import yookassa

        if yookassa.configured():
            yookassa.install()
