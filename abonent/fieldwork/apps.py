from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FieldworkConfig(AppConfig):
    name = "abonent.fieldwork"
    label = "fieldwork"
    verbose_name = _("Field work")

    def ready(self):
        from . import audit_labels, panels, seeding  # noqa: F401
