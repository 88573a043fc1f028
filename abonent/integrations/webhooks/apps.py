from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "abonent.integrations.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from abonent.api.auth import register_token_check
        from abonent.core import secrets

        from . import events, scopes, tasks  # noqa: F401

        events.connect_billing()
        secrets.register_field("webhooks.Endpoint", "secret_encrypted")
        register_token_check(scopes.check_scopes)
