import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.catalog import actions as catalog
from abonent.network import actions as network
from abonent.network.models import LoginKind
from abonent.network.testing import RADCLIENT, radius_server
from abonent.staff.actions import do_create_api_token, do_create_staff_user
from abonent.staff.permissions import Role

SECRET = "a-long-shared-secret-for-tests"


def pytest_collection_modifyitems(items):
    from django.conf import settings

    sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    for item in items:
        if "network" not in str(item.fspath) or "server" not in item.fixturenames:
            continue
        if RADCLIENT is None:
            item.add_marker(pytest.mark.skip(reason="radclient is not installed (apt-get install freeradius-utils)"))
        elif sqlite:
            # The server runs in threads and needs committed data (transactional tests), which SQLite's test
            # database cannot flush past the ledger's append-only triggers. test_accounting.py covers the
            # SQLite write path directly.
            item.add_marker(pytest.mark.skip(reason="the RADIUS socket tests run on PostgreSQL"))


@pytest.fixture
def plan(admin, internet):
    return catalog.do_create_plan(
        code="home-100",
        name="Домашний 100",
        service=internet,
        monthly_fee=Decimal("650.00"),
        valid_from=dt.date(2020, 1, 1),
        download_kbps=102400,
        upload_kbps=51200,
        acting_user=admin,
    )


@pytest.fixture
def make_nas(admin):
    def make(vendor="mikrotik", **fields):
        fields.setdefault("name", f"nas-{vendor}")
        fields.setdefault("ip_address", "127.0.0.1")
        return network.do_create_nas(acting_user=admin, secret=SECRET, vendor=vendor, **fields)

    return make


@pytest.fixture
def customer(make_subscriber, plan, admin):
    """A subscriber with an active internet subscription, money on the account and a PPPoE login."""
    subscriber = make_subscriber()
    billing.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="c-1", acting_user=admin)
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    network.do_create_login(
        subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="ivanov", password="s3cret-pw"
    )
    return subscriber


@pytest.fixture
def radclient():
    from abonent.network.testing import radclient as send

    return send


@pytest.fixture
def server(tmp_path):
    """Start the server after the test's data exists (it loads the policy at start)."""

    def start():
        return radius_server(tmp_path / "radius")

    return start


@pytest.fixture
def radius_token(db):
    """``(token, plaintext)`` of FreeRADIUS's service account (only a service account holds Perm.RADIUS_SERVICE),
    bound to no NAS yet: ``abonent.api.actions.do_bind_api_token_to_nas`` binds it."""
    account = do_create_staff_user(username="freeradius", password=None, role=Role.CASHIER, is_service_account=True)
    return do_create_api_token(user=account, name="FreeRADIUS")


@pytest.fixture
def nas_a(make_nas):
    return make_nas()


@pytest.fixture
def nas_b(make_nas):
    return make_nas(name="nas-b", ip_address="10.0.0.2")
