from django.conf import settings
from django.urls import get_script_prefix, reverse
from django.utils.translation import gettext_lazy as _

# The menu: (url name in the ``portal`` namespace, label). The phone's tab bar shows Home, Pay, Plan and Requests.
NAV = [
    ("home", _("Home")),
    ("pay", _("Pay")),
    ("plans", _("Plan")),
    ("services", _("Services")),
    ("usage", _("Usage")),
    ("bonuses", _("Bonuses")),
    ("requests", _("Requests")),
    ("profile", _("Profile")),
]
TABS = ("home", "pay", "plans", "requests")
# Which menu item a page belongs to, by the start of its url name (the security pages sit under the profile).
SECTIONS = [
    ("home", "home"),
    ("pay", "pay"),
    ("plan", "plans"),
    ("services", "services"),
    ("usage", "usage"),
    ("bonuses", "bonuses"),
    ("request", "requests"),
    ("profile", "profile"),
    ("security", "profile"),
    ("change_password", "profile"),
    ("end_session", "profile"),
    ("logout_everywhere", "profile"),
]
# The menu's addresses, reversed once per script prefix: every portal page renders the menu twice, and reversing
# its eleven links cost about a millisecond a page.
_URLS: dict[str, dict[str, str]] = {}


def _urls() -> dict[str, str]:
    prefix = get_script_prefix()
    if prefix not in _URLS:
        _URLS[prefix] = {name: reverse(f"portal:{name}") for name, _label in NAV}
    return _URLS[prefix]


def section_of(url_name: str | None) -> str:
    for start, section in SECTIONS:
        if url_name and url_name.startswith(start):
            return section
    return ""


def portal(request):
    if not request.path.startswith("/my/"):
        return {}
    urls = _urls()
    menu = [(name, urls[name], label) for name, label in NAV]
    match = getattr(request, "resolver_match", None)
    return {
        "PORTAL_NAV": menu,
        "PORTAL_TABS": [item for item in menu if item[0] in TABS],
        "PORTAL_SECTION": section_of(match.url_name if match else None),
        "PORTAL_BRAND": settings.ABONENT_PORTAL_BRAND,
    }
