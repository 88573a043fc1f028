"""System checks of the notifications app: settings that would otherwise fail only when the first notice is
queued (or, worse, be read as "no quiet hours" for every subscriber without anyone noticing)."""

from django.conf import settings
from django.core.checks import Error, register

from .queueing import parse_quiet_hours


@register()
def check_quiet_hours(app_configs, **kwargs):
    """A malformed ABONENT_QUIET_HOURS: refused at start. At run time queueing falls back to no quiet hours (and
    logs it) rather than failing every notice."""
    try:
        parse_quiet_hours(settings.ABONENT_QUIET_HOURS)
    except (TypeError, ValueError):
        return [
            Error(
                f"ABONENT_QUIET_HOURS={settings.ABONENT_QUIET_HOURS!r} is not a time range",
                hint='Write it as "21:00-09:00" (local time, may cross midnight), or leave it empty for none.',
                id="notifications.E001",
            )
        ]
    return []
