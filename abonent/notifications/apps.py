from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "abonent.notifications"
    label = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from . import audiences_builtin, checks, events, jobs, panels, tasks  # noqa: F401

        events.connect_billing()
