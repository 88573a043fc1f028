"""The portal as an installable web app: the manifest, the service worker (served from ``/my/`` so that it may
control the portal's pages) and the offline page it shows when there is no network. All three are public: a phone
asks for them before anyone signs in, and none of them holds anything personal."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from abonent import __version__

from ..middleware import PREFIX, public

SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "portal" / "sw.js"
THEME_COLOUR = "#0d6efd"  # portal/base.html's theme-color
BACKGROUND_COLOUR = "#f5f7fb"  # portal.css's body


def offline_assets() -> list[str]:
    """The static files the offline page uses, as it links them: the service worker keeps exactly these."""
    return [
        static("vendor/bootstrap-5.3.9/bootstrap.min.css"),
        f"{static('portal/portal.css')}?v={__version__}",
        static("portal/icon.svg"),
    ]


@public
def manifest(request):
    brand = settings.ABONENT_PORTAL_BRAND
    body = {
        "id": PREFIX,
        "name": brand,
        "short_name": brand,
        "description": _("Your personal account: balance, payments, plan and requests."),
        "lang": get_language(),
        "start_url": reverse("portal:home"),
        "scope": PREFIX,
        "display": "standalone",
        "background_color": BACKGROUND_COLOUR,
        "theme_color": THEME_COLOUR,
        "icons": [
            {"src": static("portal/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": static("portal/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            # The PNGs are full-bleed, the picture inside the central safe zone: fit for a launcher's mask.
            {"src": static("portal/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
            {"src": static("portal/icon.svg"), "sizes": "any", "type": "image/svg+xml", "purpose": "any"},
        ],
    }
    return HttpResponse(json.dumps(body, ensure_ascii=False), content_type="application/manifest+json; charset=utf-8")


@functools.cache
def _service_worker_source() -> str:
    return SERVICE_WORKER.read_text(encoding="utf-8")


@public
def service_worker(request):
    config = {"version": __version__, "offline": reverse("portal:offline"), "assets": offline_assets()}
    source = f"self.ABONENT_PORTAL_SW = {json.dumps(config)};\n{_service_worker_source()}"
    response = HttpResponse(source, content_type="text/javascript; charset=utf-8")
    # Served from /my/ its scope may be /my/ anyway; the header says so explicitly (and survives a move of the file).
    response["Service-Worker-Allowed"] = PREFIX
    return response


@public
def offline(request):
    """What the service worker shows without a network. It is fetched without cookies and must stay impersonal:
    no name, no account, no CSRF token (its own template, not the portal's frame)."""
    context = {"brand": settings.ABONENT_PORTAL_BRAND, "assets": offline_assets(), "home": reverse("portal:home")}
    return render(request, "portal/pwa_offline.html", context)


urlpatterns = [
    path("manifest.webmanifest", manifest, name="manifest"),
    path("sw.js", service_worker, name="service_worker"),
    path("offline/", offline, name="offline"),
]
