from django.conf import settings
from django.utils.translation import gettext_lazy as _

# The menu: (url name in the ``portal`` namespace, label). The phone's tab bar shows the first four.
NAV = [
    ("home", _("Home")),
    ("pay", _("Pay")),
    ("plans", _("Plan")),
    ("services", _("Services")),
    ("usage", _("Usage")),
    ("requests", _("Requests")),
    ("profile", _("Profile")),
]


def portal(request):
    if not request.path.startswith("/my/"):
        return {}
    return {"PORTAL_NAV": NAV, "PORTAL_TABS": [*NAV[:3], NAV[5]], "PORTAL_BRAND": settings.ABONENT_PORTAL_BRAND}
