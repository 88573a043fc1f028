"""The portal as an installable app: a valid manifest whose icons exist at their sizes, a service worker served for
the /my/ scope that caches nothing personal, an offline page with nothing of anyone's session, and the frame
pointing the browser at the worker."""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from abonent import __version__

from .conftest import signed_in

pytestmark = pytest.mark.django_db


def _static_file(url: str) -> Path:
    assert url.startswith(settings.STATIC_URL), url
    found = finders.find(url.removeprefix(settings.STATIC_URL).split("?")[0])
    assert found, f"{url} is not a static file"
    return Path(found)


def _png_size(file: Path) -> tuple[int, int]:
    head = file.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_the_manifest_is_valid_json_with_icons_that_exist(settings):
    settings.ABONENT_PORTAL_BRAND = "ТверьНет"
    response = Client().get("/my/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json; charset=utf-8"
    manifest = json.loads(response.content)
    assert {k: manifest[k] for k in ("name", "short_name", "start_url", "scope", "display", "id")} == {
        "name": "ТверьНет",
        "short_name": "ТверьНет",
        "start_url": "/my/",
        "scope": "/my/",
        "display": "standalone",
        "id": "/my/",
    }
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    sizes = set()
    for icon in manifest["icons"]:
        file = _static_file(icon["src"])
        if icon["type"] == "image/png":
            width, height = _png_size(file)
            assert icon["sizes"] == f"{width}x{height}"
            sizes.add(width)
        else:
            assert (icon["type"], icon["sizes"]) == ("image/svg+xml", "any")
            assert file.read_text().startswith("<svg")
    assert sizes == {192, 512}
    assert {i["purpose"] for i in manifest["icons"]} == {"any", "maskable"}


def test_the_service_worker_is_served_for_the_portal_scope():
    response = Client().get("/my/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Service-Worker-Allowed"] == "/my/"
    assert response["Cache-Control"] == "no-store"
    source = response.content.decode()
    config = json.loads(re.match(r"self\.ABONENT_PORTAL_SW = (\{.*\});\n", source).group(1))
    assert config["version"] == __version__ and config["offline"] == "/my/offline/"
    for url in config["assets"]:
        _static_file(url)
    # Nothing but the offline page and those static files is ever put in the cache.
    assert re.findall(r"cache\.(put|add|addAll)\(([^,)]*)", source) == [
        ("put", "CONFIG.offline"),
        ("addAll", "CONFIG.assets"),
    ]
    assert 'credentials: "omit"' in source


def test_the_service_worker_is_valid_javascript(tmp_path):
    file = tmp_path / "sw.js"
    file.write_bytes(Client().get("/my/sw.js").content)
    assert subprocess.run(["node", "--check", str(file)], capture_output=True, check=False).returncode == 0


def test_the_offline_page_holds_nothing_personal_even_when_signed_in(subscriber):
    response = signed_in(subscriber).get("/my/offline/")
    html = response.content.decode()
    assert response.status_code == 200
    assert subscriber.account_number not in html and subscriber.last_name not in html
    assert "csrfmiddlewaretoken" not in html and "X-CSRFToken" not in html
    assert 'href="/my/"' in html


def test_the_portal_frame_registers_the_worker_and_links_the_manifest(subscriber):
    html = signed_in(subscriber).get("/my/").content.decode()
    assert 'data-service-worker="/my/sw.js"' in html
    assert '<link rel="manifest" href="/my/manifest.webmanifest">' in html
    assert 'data-service-worker="/my/sw.js"' in Client().get("/my/login/").content.decode()


def test_the_icons_referenced_by_the_frame_exist():
    for name in ("portal/icon.svg", "portal/icon-192.png", "portal/icon-512.png"):
        assert finders.find(name), name
