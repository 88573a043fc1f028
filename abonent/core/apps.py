from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "abonent.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        # Periodic jobs register themselves when their tasks module is imported.
        from . import tasks  # noqa: F401

        # Each app names its audit actions in its own audit_labels module (core.audit_labels), found here as the
        # admin finds admin modules: core imports no app by name.
        autodiscover_modules("audit_labels")
