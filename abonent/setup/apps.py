from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SetupConfig(AppConfig):
    name = "abonent.setup"
    label = "setup"
    verbose_name = _("First-run set-up")

    def ready(self) -> None:
        from . import seeding  # noqa: F401
