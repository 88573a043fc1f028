"""The console's home page: the dashboard, and its widgets as a fragment that the page reloads every 30 seconds
(htmx polling) without reloading itself."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.views.decorators.cache import never_cache

from abonent.staff.permissions import home_url_name

from .widgets import build_dashboard, ticket_age_labels

REFRESH_SECONDS = 30


def _context(request) -> dict:
    return {
        "board": build_dashboard(request.user),
        "ticket_ages": ticket_age_labels(),
        "refresh_seconds": REFRESH_SECONDS,
        "warning_percent": settings.ABONENT_NETWORK_POOL_WARNING_PERCENT,
        "danger_percent": settings.ABONENT_NETWORK_POOL_DANGER_PERCENT,
    }


@never_cache
@login_required
def home(request):
    # A role with a home of its own (the lawful-interception officer) has no widget here: an empty board would
    # only say that the console holds more than they may see.
    if (own_home := home_url_name(request.user)) is not None:
        return redirect(own_home)
    return render(request, "dashboard/home.html", _context(request))


@never_cache
def widgets(request):
    if not request.user.is_authenticated:
        # The page's polling outlived the session: send the whole page to the login, not the form into the widgets.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?next={reverse('dashboard:home')}"
        return response
    return render(request, "dashboard/_widgets.html", _context(request))
