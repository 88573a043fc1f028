"""Security headers: a Content-Security-Policy that runs no inline script, and no-store where personal data is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

import abonent

POLICY = settings.ABONENT_CONTENT_SECURITY_POLICY


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def test_the_policy_runs_scripts_from_our_own_files_only():
    directives = _directives(POLICY)

    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in POLICY


def test_console_pages_carry_the_policy_and_are_not_stored(operator_client, make_subscriber):
    subscriber = make_subscriber()

    for path in ("/staff/subscribers/", f"/staff/subscribers/{subscriber.pk}/", "/staff/login/"):
        response = operator_client.get(path, follow=True)
        assert response.status_code == 200, path
        assert response["Content-Security-Policy"] == POLICY, path
        assert "no-store" in response["Cache-Control"], path


def test_api_answers_are_not_stored(api_client, make_subscriber):
    subscriber = make_subscriber()

    response = api_client.get(f"/api/v1/subscribers/{subscriber.pk}")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Security-Policy"] == POLICY


def test_refusals_before_any_view_carry_the_headers_too(api_client):
    response = api_client.get("/api/v1/subscribers", {"q": "\x00"})

    assert response.status_code == 422
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Security-Policy"] == POLICY


def test_static_files_may_be_cached(client, db):
    response = client.get("/static/abonent/console.js")

    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_django_debug_pages_keep_their_inline_styles(client, db, settings):
    settings.DEBUG = True

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Content-Security-Policy" not in response


def test_the_language_switcher_submits_without_an_inline_handler(operator_client):
    body = operator_client.get("/staff/subscribers/").content.decode()

    assert 'name="language" class="form-select form-select-sm" data-submit-on-change' in body
    assert "/static/abonent/console.js" in body
    assert '"includeIndicatorStyles":false' in body and '"allowEval":false' in body


TEMPLATES = sorted(Path(abonent.__file__).parent.glob("**/templates/**/*.html"))
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(Path(abonent.__file__).parent)))
def test_no_template_has_an_inline_script_or_handler(template):
    # The policy refuses them: an inline handler here would silently do nothing in the browser.
    text = template.read_text()

    assert INLINE_HANDLER.findall(text) == []
    assert INLINE_SCRIPT.findall(text) == []
    assert "javascript:" not in text
