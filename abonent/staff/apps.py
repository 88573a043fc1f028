from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StaffConfig(AppConfig):
    name = "abonent.staff"
    label = "staff"
    verbose_name = _("Staff")

    def ready(self) -> None:
        from . import checks, seeding, tasks  # noqa: F401
