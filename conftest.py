"""Test set-up shared by every test: fast hashing, data built through actions, logged-in clients."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.test import Client

from abonent.catalog import actions as catalog
from abonent.core.models import Branch
from abonent.staff.actions import do_create_api_token, do_create_staff_user
from abonent.staff.permissions import Role
from abonent.subscribers.actions import AddressData, ContactData, SubscriberData, do_create_subscriber


@receiver(connection_created)
def _allow_flushing_the_ledger(sender, connection, **kwargs):
    # Transactional tests empty every table with TRUNCATE between tests; the ledger refuses that unless the
    # session opts in (migration billing/0002). Production sessions never set this.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET abonent.allow_ledger_truncate = 'on'")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 is deliberately slow; tests that check the production hasher read settings directly.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def internet(admin):
    return catalog.do_create_service(code="internet", name="Интернет", kind="internet", acting_user=admin)


@pytest.fixture
def make_plan(admin, internet):
    def make(code, fee, *, valid_from=dt.date(2020, 1, 1), **fields):
        fields.setdefault("name", code)
        fields.setdefault("service", internet)
        return catalog.do_create_plan(
            code=code, monthly_fee=Decimal(fee), valid_from=valid_from, acting_user=admin, **fields
        )

    return make


@pytest.fixture
def branch(db) -> Branch:
    return Branch.objects.create(code="tver", name="Тверь")


@pytest.fixture
def other_branch(db) -> Branch:
    return Branch.objects.create(code="klin", name="Клин")


@pytest.fixture
def make_staff(db):
    counter = iter(range(1, 10_000))

    def make(role: str = Role.OPERATOR, *, username: str | None = None, branches=(), password: str = "s3cret-pass!"):
        return do_create_staff_user(
            username=username or f"{role}-{next(counter)}",
            password=password,
            role=role,
            full_name=f"Test {role}",
            branch_ids=[b.pk for b in branches],
        )

    return make


@pytest.fixture
def admin(make_staff):
    return make_staff(Role.ADMIN, username="admin")


@pytest.fixture
def operator(make_staff):
    return make_staff(Role.OPERATOR, username="operator")


@pytest.fixture
def make_subscriber(branch, admin):
    def make(
        *,
        last_name="Иванов",
        first_name="Иван",
        middle_name="Петрович",
        phone="+79161234567",
        branch_obj=None,
        acting_user=None,
        **extra,
    ):
        contacts = [ContactData(kind="phone", value=phone)] if phone else []
        addresses = extra.pop("addresses", [AddressData(city="Тверь", street="ул. Ленина", house="5", apartment="12")])
        return do_create_subscriber(
            SubscriberData(
                branch_id=(branch_obj or branch).pk,
                last_name=last_name,
                first_name=first_name,
                middle_name=middle_name,
                contacts=contacts,
                addresses=addresses,
                **extra,
            ),
            acting_user=acting_user or admin,
        )

    return make


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def api_token(admin) -> str:
    _token, plaintext = do_create_api_token(user=admin, name="tests")
    return plaintext


@pytest.fixture
def api_client(api_token) -> Client:
    return Client(headers={"Authorization": f"Bearer {api_token}"})


@pytest.fixture
def import_settings():
    """``import_settings(env)``: ``abonent.settings`` imported in a fresh interpreter with ``env`` as its only
    ABONENT_* variables, for the checks settings make at import (production refusals, bounds)."""

    def run(env: dict) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_")}
        return subprocess.run(
            [sys.executable, "-c", "import abonent.settings"],
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


FRESH = object()


class JsonApi(Client):
    """JSON in and out, with a staff user's API token (``api``, ``api_of``, ``api_as``).

    A POST carries a fresh Idempotency-Key, as an integration's first attempt does; ``key="…"`` sends that key,
    ``key=None`` none. A string body is sent as it is (to send the same JSON spelt another way).
    """

    def post(self, path, data=None, *, key=FRESH, **extra):
        if key is FRESH:
            key = uuid.uuid4().hex
        if key is not None:
            extra["headers"] = {"Idempotency-Key": key, **extra.get("headers", {})}
        body = data if isinstance(data, str) else json.dumps(data or {})
        return super().post(path, body, content_type="application/json", **extra)

    def put(self, path, data=None, **extra):
        return super().put(path, json.dumps(data or {}), content_type="application/json", **extra)

    def delete(self, path, data=None, **extra):
        return super().delete(path, json.dumps(data or {}), content_type="application/json", **extra)


@pytest.fixture
def api_as(db):
    """``api_as(user)``: a JSON client holding a fresh token of ``user``; ``api_as(None)``: no token at all."""

    def make(user) -> JsonApi:
        if user is None:
            return JsonApi()
        _token, plaintext = do_create_api_token(user=user, name="tests")
        return JsonApi(headers={"Authorization": f"Bearer {plaintext}"})

    return make


@pytest.fixture
def api_of(make_staff, api_as):
    """``api_of(role, **staff fields)``: a JSON client of a new staff user with that role."""

    def make(role, **kwargs) -> JsonApi:
        return api_as(make_staff(role, **kwargs))

    return make


@pytest.fixture
def api(api_token) -> JsonApi:
    """A JSON client of the admin's token."""
    return JsonApi(headers={"Authorization": f"Bearer {api_token}"})
