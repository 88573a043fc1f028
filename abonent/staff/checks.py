from django.conf import settings
from django.core.checks import Error, Tags, register

from .permissions import Role


@register(Tags.security)
def check_two_factor_roles(app_configs, **kwargs):
    """A misspelt role in ABONENT_REQUIRE_2FA_ROLES would silently leave that role without the second factor."""
    unknown = sorted(set(settings.ABONENT_REQUIRE_2FA_ROLES) - set(Role.values))
    if not unknown:
        return []
    return [
        Error(
            f"ABONENT_REQUIRE_2FA_ROLES names unknown roles: {', '.join(unknown)}",
            hint=f'Use a comma-separated list of: {", ".join(Role.values)} (or "none" for nobody).',
            id="staff.E001",
        )
    ]
