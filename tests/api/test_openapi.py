"""The served OpenAPI schema is the committed one: an API change is a reviewed change of ``docs/api/openapi.json``."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management import call_command
from django.test import Client

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"
HINT = "the served API schema differs from docs/api/openapi.json: run `make openapi` and commit docs/api/openapi.json"


def test_served_schema_is_the_committed_one(db):
    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert response.json() == json.loads(COMMITTED.read_text(encoding="utf-8")), HINT


def test_make_openapi_writes_the_same_bytes_every_time(tmp_path):
    # The arguments of the Makefile's ``openapi`` target.
    outputs = [tmp_path / "first.json", tmp_path / "second.json"]
    for output in outputs:
        call_command(
            "export_openapi_schema", "--api", "abonent.api.urls.api", "--indent", "2", "--sorted", "--output", output
        )

    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert json.loads(outputs[0].read_bytes()) == json.loads(COMMITTED.read_text(encoding="utf-8")), HINT
