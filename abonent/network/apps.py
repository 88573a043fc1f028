from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NetworkConfig(AppConfig):
    name = "abonent.network"
    label = "network"
    verbose_name = _("Network")

    def ready(self) -> None:
        from abonent.core import secrets

        from . import audiences, events, metrics, panels, seeding, subscriber_search, tasks  # noqa: F401
        from .actions import note_logins_reencrypted
        from .monitoring import seeding as monitoring_seeding  # noqa: F401

        # For `abonent rotate-field-key`. The RADIUS processes reload the NAS table every few seconds, but keep
        # passwords in memory (and in their snapshot) until told that those subscribers changed.
        secrets.register_field("network.Nas", "secret_encrypted")
        secrets.register_field("network.Login", "password_encrypted", on_rotated=note_logins_reencrypted)
