"""Issue 17: a PPPoE password can be reset from the card (typed or generated, shown to the operator once, audited
without it) and a login disabled and enabled again; RADIUS answers with the new state."""

import pytest
from django.test import Client

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network import actions as network
from abonent.network.models import CoaKind, CoaRequest, Login, LoginKind, RejectReason
from abonent.network.policy import PolicyStore
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry
from abonent.staff.permissions import Role

from .packets import ACCEPT, NAS_ADDR, REJECT, pap_request
from .test_views import HTMX, open_session

pytestmark = pytest.mark.django_db


def client_of(make_staff, role) -> Client:
    client = Client()
    client.force_login(make_staff(role))
    return client


@pytest.fixture
def engineer(make_staff):
    return client_of(make_staff, Role.ENGINEER)


@pytest.fixture
def radius(customer, nas_a):
    """``abonent radius`` as it runs: the policy loaded at start, then kept up by the policy-change feed."""
    store = PolicyStore()
    store.load_all()
    store.refresh_sets()
    server = RadiusServer(store=store, nas_table={"127.0.0.1": NasEntry.from_model(nas_a)})

    def answer(username: str, password: str) -> int:
        store.apply_changes()
        return server.handle_auth(pap_request(1, username, password), NAS_ADDR)[0]

    return answer


def login_of(customer) -> Login:
    return Login.objects.get(subscriber=customer, username="ivanov")


def path(customer, login, action: str) -> str:
    return f"/staff/network/subscribers/{customer.pk}/logins/{login.pk}/{action}/"


def test_a_typed_password_replaces_the_old_one_for_radius_and_is_audited_without_it(
    engineer, customer, radius, make_staff
):
    login = login_of(customer)
    old_token = login.password_encrypted
    assert radius("ivanov", "s3cret-pw") == ACCEPT

    response = engineer.post(
        path(customer, login, "password"), {"password": "new-pass-42", "reason": "Забыл"}, headers=HTMX
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert '<code class="fs-6 user-select-all" id="new-password-value">new-pass-42</code>' in body
    login.refresh_from_db()
    assert login.password_encrypted != old_token and login.password == "new-pass-42"
    assert radius("ivanov", "new-pass-42") == ACCEPT
    assert radius("ivanov", "s3cret-pw") == REJECT
    event = AuditEvent.objects.get(action="network.login_password_reset")
    assert event.after == {"password_changed": True, "generated": False} and event.reason == "Забыл"
    assert "new-pass-42" not in str(event.before) + str(event.after) + event.reason + event.object_repr
    # Shown once: the card does not show it again, its history says only that it was reset.
    card = client_of(make_staff, Role.ADMIN).get(f"/staff/subscribers/{customer.pk}/").content.decode()
    assert "new-pass-42" not in card and "Network login password reset" in card


def test_an_empty_password_is_generated_and_shown_once(engineer, customer, radius):
    login = login_of(customer)
    response = engineer.post(path(customer, login, "password"), {"password": ""}, headers=HTMX)
    body = response.content.decode()
    generated = body.split('id="new-password-value">')[1].split("</code>")[0]
    assert len(generated) == network.PASSWORD_LENGTH and set(generated) <= set(network.PASSWORD_ALPHABET)
    assert radius("ivanov", generated) == ACCEPT
    assert AuditEvent.objects.get(action="network.login_password_reset").after["generated"] is True


def test_without_javascript_the_password_is_a_page_not_a_message(engineer, customer):
    response = engineer.post(path(customer, login_of(customer), "password"), {"password": "typed-pass-1"})
    assert response.status_code == 200 and 'id="new-password-value">typed-pass-1</code>' in response.content.decode()
    assert "messages" not in response.cookies


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("abc", "The password must be at least 6 characters long."),
        (" spaced-pass ", "Up to 128 bytes of printable characters, without spaces at either end."),
        ("x" * 129, "Up to 128 bytes of printable characters, without spaces at either end."),
        ("tab\there-pw", "Up to 128 bytes of printable characters, without spaces at either end."),
    ],
)
def test_a_bad_password_is_422_next_to_the_field_and_nothing_changes(engineer, customer, radius, password, message):
    login = login_of(customer)
    before = (login.password_encrypted, AuditEvent.objects.count())
    response = engineer.post(path(customer, login, "password"), {"password": password}, headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 422
    field = body.split(f'id="password-{login.pk}-password"')[1][:400]
    assert message in field
    login.refresh_from_db()
    assert (login.password_encrypted, AuditEvent.objects.count()) == before
    assert radius("ivanov", "s3cret-pw") == ACCEPT


def test_an_ipoe_login_has_no_password_to_reset(engineer, customer, admin):
    mac = network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="AA:BB:CC:00:00:01")
    body = engineer.get(f"/staff/subscribers/{customer.pk}/").content.decode()
    row = body.split(f'data-login="{mac.pk}"')[1].split("</tr>")[0]
    assert "Reset password" not in row and "Disable" in row
    response = engineer.post(path(customer, mac, "password"), {"password": "whatever-1"}, headers=HTMX)
    assert response.status_code == 422
    assert "Only a PPPoE or hotspot login has a password" in response.content.decode()


def test_support_cannot_reset_or_disable(make_staff, customer):
    support = client_of(make_staff, Role.SUPPORT)
    login = login_of(customer)
    assert support.post(path(customer, login, "password"), {"password": "new-pass-42"}).status_code == 403
    assert support.post(path(customer, login, "active"), {"active": "0"}).status_code == 403
    login.refresh_from_db()
    assert login.password == "s3cret-pw" and login.is_active
    body = support.get(f"/staff/subscribers/{customer.pk}/").content.decode()
    assert "Reset password" not in body and "login-disable" not in body


def test_disabling_rejects_the_login_and_disconnects_its_session_enabling_lets_it_back(
    engineer, customer, nas_a, radius
):
    login = login_of(customer)
    session = open_session(customer, nas_a)

    response = engineer.post(path(customer, login, "active"), {"active": "0", "reason": "Просьба"}, headers=HTMX)

    assert response.status_code == 200
    assert "Login ivanov disabled: RADIUS rejects it, its sessions are disconnected." in response.content.decode()
    login.refresh_from_db()
    assert not login.is_active
    assert CoaRequest.objects.filter(session=session, kind=CoaKind.DISCONNECT).count() == 1
    assert radius("ivanov", "s3cret-pw") == REJECT
    event = AuditEvent.objects.get(action="network.login_disabled")
    assert event.before == {"is_active": True} and event.after["is_active"] is False and event.reason == "Просьба"

    engineer.post(path(customer, login, "active"), {"active": "1"}, headers=HTMX)
    login.refresh_from_db()
    assert login.is_active and radius("ivanov", "s3cret-pw") == ACCEPT
    assert AuditEvent.objects.filter(action="network.login_enabled").count() == 1


def test_a_bad_active_value_changes_nothing(engineer, customer):
    login = login_of(customer)
    response = engineer.post(path(customer, login, "active"), {"active": "maybe"}, headers=HTMX)
    assert response.status_code == 422
    login.refresh_from_db()
    assert login.is_active
    assert not AuditEvent.objects.filter(action__in=["network.login_disabled", "network.login_enabled"]).exists()


def test_a_disabled_login_is_rejected_with_its_reason(customer, nas_a, admin):
    network.do_set_login_active(login_of(customer), active=False, acting_user=admin)
    store = PolicyStore()
    store.load_all()
    policy = store.find("ivanov", ppp=True)
    assert store.decide(policy, clock.now()).reason == RejectReason.LOGIN_DISABLED


def test_header_says_online_since_and_the_address(engineer, customer, nas_a):
    open_session(customer, nas_a)
    body = engineer.get(f"/staff/subscribers/{customer.pk}/").content.decode()
    header = body[body.index('id="card-header"') : body.index("</header>")]
    assert 'id="header-online"><span class="badge text-bg-success">online</span> since' in header
    assert "100.64.0.7" in header
