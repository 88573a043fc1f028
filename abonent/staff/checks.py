from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

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


@register(Tags.security)
def check_lawful_officers_two_factor(app_configs, **kwargs):
    """A production list written before the lawful-interception role existed (``admin,cashier``) replaces the default
    that includes it: officers who export passports and session histories would sign in with a password alone, and
    nothing would say so. Silence staff.W002 if that is the choice (docs/lawful-export.md, "Access")."""
    if settings.ENV != "production" or Role.LAWFUL in settings.ABONENT_REQUIRE_2FA_ROLES:
        return []
    return [
        Warning(
            "ABONENT_REQUIRE_2FA_ROLES leaves out the lawful-interception officer (lawful): officers sign in without "
            "a second factor",
            hint="Add lawful to the list, or silence staff.W002 (SILENCED_SYSTEM_CHECKS) if that is deliberate.",
            id="staff.W002",
        )
    ]
