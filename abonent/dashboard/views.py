"""The console's home page: the dashboard, and its widgets as a fragment that the page reloads every 30 seconds
(htmx polling) without reloading itself."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.views.decorators.cache import never_cache

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
    return render(request, "dashboard/home.html", _context(request))


@never_cache
def widgets(request):
    if not request.user.is_authenticated:
        # The page's polling outlived the session: send the whole page to the login, not the form into the widgets.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?next={reverse('dashboard:home')}"
        return response
    return render(request, "dashboard/_widgets.html", _context(request))
