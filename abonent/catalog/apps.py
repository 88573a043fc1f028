from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "abonent.catalog"
    label = "catalog"
    verbose_name = _("Catalog")

    def ready(self) -> None:
        from abonent.core import audit

        from . import seeding  # noqa: F401

        audit.register_action_labels(
            {
                "catalog.plan_created": _("Plan created"),
                "catalog.price_added": _("Plan price added"),
                "catalog.service_created": _("Service created"),
                "catalog.time_package_created": _("Time package created"),
                "catalog.turbo_created": _("Turbo option created"),
                "catalog.turbo_updated": _("Turbo option changed"),
            }
        )
