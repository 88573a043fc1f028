"""Who may call FreeRADIUS's rlm_rest endpoints, and for which NAS (issue 11).

They answer with any subscriber's PPPoE password in clear and write sessions, so only a service account's token
bound to the NAS may: not an engineer's (branch-limited or not), not an administrator's, and a token bound to
NAS A can neither authorize nor write accounting as NAS B, whatever the fields it writes say.
"""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from abonent.api.actions import do_bind_api_token_to_nas, do_create_radius_token
from abonent.api.models import ApiTokenNas
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network import accounting
from abonent.network.models import AuthAttempt, Session, SessionStatus
from abonent.staff.actions import do_create_api_token, do_revoke_api_token
from abonent.staff.models import StaffUser
from abonent.staff.permissions import Perm, Role, has_perm

PASSWORD = "s3cret-pw"


def _rlm(**attributes) -> dict:
    return {name.replace("_", "-"): {"type": "string", "value": [value]} for name, value in attributes.items()}


def _post(token: str, path: str, headers: dict | None = None, **attributes):
    client = Client(headers={"Authorization": f"Bearer {token}", **(headers or {})})
    return client.post(f"/api/v1/radius/{path}", _rlm(**attributes), content_type="application/json")


@pytest.fixture
def nas_a(make_nas):
    return make_nas("mikrotik", name="bras-a", ip_address="127.0.0.1")


@pytest.fixture
def nas_b(make_nas):
    return make_nas("mikrotik", name="bras-b", ip_address="127.0.0.2")


@pytest.fixture
def token_a(radius_token, nas_a, nas_b) -> str:
    """FreeRADIUS's token, bound to NAS A only (NAS B exists, registered, bound to nothing)."""
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)
    return radius_token[1]


def _open_session_on(nas, customer) -> Session:
    accounting.write_batch(
        [
            accounting.AcctRecord(
                status=1,
                nas_id=nas.pk,
                event_time=clock.now(),
                unique_id="b-session",
                acct_session_id="b-1",
                username="ivanov",
                subscriber_id=customer.pk,
            )
        ]
    )
    return Session.objects.get(nas=nas)


# --- people's tokens -------------------------------------------------------------------------------------


def test_a_branch_limited_engineers_token_gets_403_and_no_password(customer, nas_a, make_staff, branch):
    engineer = make_staff(Role.ENGINEER, branches=[branch])
    _token, plaintext = do_create_api_token(user=engineer, name="laptop")

    response = _post(plaintext, "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_service_required"
    assert PASSWORD not in response.content.decode()
    assert not AuthAttempt.objects.exists()


def test_an_administrators_token_gets_403_and_no_password(customer, nas_a, admin):
    _token, plaintext = do_create_api_token(user=admin, name="scripts")

    response = _post(plaintext, "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_service_required"
    assert PASSWORD not in response.content.decode()
    assert not has_perm(admin, Perm.RADIUS_SERVICE)


def test_a_persons_token_cannot_write_accounting_or_post_auth(customer, nas_a, make_staff):
    _token, plaintext = do_create_api_token(user=make_staff(Role.ENGINEER), name="laptop")

    start = _post(
        plaintext,
        "accounting",
        User_Name="ivanov",
        Acct_Status_Type="Start",
        Acct_Session_Id="forged-1",
        FreeRADIUS_Client_IP_Address="127.0.0.1",
    )
    post_auth = _post(
        plaintext,
        "post-auth",
        headers={"X-Abonent-Result": "reject"},
        User_Name="ivanov",
        FreeRADIUS_Client_IP_Address="127.0.0.1",
    )

    assert (start.status_code, post_auth.status_code) == (403, 403)
    assert start.json()["error"]["code"] == post_auth.json()["error"]["code"] == "radius_service_required"
    assert not Session.objects.exists()
    assert not AuthAttempt.objects.exists()


def test_a_service_account_limited_to_a_branch_gets_403(customer, radius_token, nas_a, branch):
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)
    radius_token[0].user.branches.set([branch])  # set behind the actions' back, after the binding

    response = _post(radius_token[1], "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_service_required"
    assert PASSWORD not in response.content.decode()


def test_a_service_token_bound_to_no_nas_gets_403(customer, radius_token, nas_a):
    response = _post(radius_token[1], "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_service_required"
    assert PASSWORD not in response.content.decode()


# --- a token bound to NAS A ------------------------------------------------------------------------------


def test_the_bound_token_authorizes_for_its_nas(customer, token_a):
    response = _post(token_a, "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1")

    assert response.status_code == 200, response.content
    assert response.json()["control:Cleartext-Password"]["value"] == [PASSWORD]


@pytest.mark.parametrize(
    "names",
    [
        {"FreeRADIUS_Client_IP_Address": "127.0.0.2"},
        {"NAS_IP_Address": "127.0.0.2"},
        {"FreeRADIUS_Client_IP_Address": "127.0.0.1", "NAS_IP_Address": "127.0.0.2"},
        {"FreeRADIUS_Client_IP_Address": "127.0.0.2", "NAS_IP_Address": "127.0.0.1"},
    ],
    ids=["source", "nas-ip", "own-source-other-nas-ip", "other-source-own-nas-ip"],
)
def test_a_token_bound_to_nas_a_cannot_authorize_as_nas_b(customer, token_a, names):
    response = _post(token_a, "authorize", User_Name="ivanov", **names)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "nas_not_bound"
    assert PASSWORD not in response.content.decode()
    assert not AuthAttempt.objects.exists()


def test_a_nas_ip_address_no_nas_is_registered_with_is_not_refused(customer, token_a, nas_a):
    """A NAS behind NAT reports an address of its own; the packet's source is still the bound NAS."""
    response = _post(
        token_a, "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1", NAS_IP_Address="10.9.9.9"
    )

    assert response.status_code == 200, response.content


def test_a_token_bound_to_nas_a_cannot_write_accounting_as_nas_b(customer, token_a, nas_b):
    b_session = _open_session_on(nas_b, customer)

    forged_start = _post(
        token_a,
        "accounting",
        User_Name="ivanov",
        Acct_Status_Type="Start",
        Acct_Session_Id="forged-1",
        NAS_IP_Address="127.0.0.2",
    )
    forged_stop = _post(
        token_a,
        "accounting",
        User_Name="ivanov",
        Acct_Status_Type="Stop",
        Acct_Session_Id="b-1",
        FreeRADIUS_Client_IP_Address="127.0.0.1",
        NAS_IP_Address="127.0.0.2",
    )
    forged_reboot = _post(token_a, "accounting", Acct_Status_Type="Accounting-On", NAS_IP_Address="127.0.0.2")

    assert [r.status_code for r in (forged_start, forged_stop, forged_reboot)] == [403, 403, 403]
    assert {r.json()["error"]["code"] for r in (forged_start, forged_stop, forged_reboot)} == {"nas_not_bound"}
    assert list(Session.objects.values_list("pk", "status")) == [(b_session.pk, SessionStatus.OPEN)]


def test_a_token_bound_to_nas_a_cannot_report_rejects_as_nas_b(customer, token_a):
    response = _post(
        token_a, "post-auth", headers={"X-Abonent-Result": "reject"}, User_Name="ivanov", NAS_IP_Address="127.0.0.2"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "nas_not_bound"
    assert not AuthAttempt.objects.exists()


def test_the_bound_token_writes_accounting_for_its_nas(customer, token_a, nas_a):
    response = _post(
        token_a,
        "accounting",
        User_Name="ivanov",
        Acct_Status_Type="Start",
        Acct_Session_Id="a-1",
        FreeRADIUS_Client_IP_Address="127.0.0.1",
        NAS_IP_Address="127.0.0.1",
    )

    assert response.status_code == 204, response.content
    assert list(Session.objects.values_list("nas_id", "subscriber_id", "status")) == [
        (nas_a.pk, customer.pk, SessionStatus.OPEN)
    ]


def test_a_radius_token_opens_no_other_endpoint(make_subscriber, token_a):
    make_subscriber()

    response = Client(headers={"Authorization": f"Bearer {token_a}"}).get("/api/v1/subscribers")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_token_only"


# --- binding ---------------------------------------------------------------------------------------------


def test_a_persons_token_cannot_be_bound(nas_a, make_staff, admin):
    token, _plaintext = do_create_api_token(user=make_staff(Role.ENGINEER), name="laptop")

    with pytest.raises(ValidationError) as exc:
        do_bind_api_token_to_nas(token, nas=nas_a, acting_user=admin)

    assert exc.value.code == "not_a_service_account"
    assert not ApiTokenNas.objects.exists()


def test_a_branch_limited_service_account_cannot_be_bound(nas_a, radius_token, branch, admin):
    radius_token[0].user.branches.set([branch])

    with pytest.raises(ValidationError) as exc:
        do_bind_api_token_to_nas(radius_token[0], nas=nas_a, acting_user=admin)

    assert exc.value.code == "branch_limited"
    assert not ApiTokenNas.objects.exists()


def test_a_revoked_token_cannot_be_bound(nas_a, radius_token, admin):
    do_revoke_api_token(token=radius_token[0], acting_user=admin, reason="leaked")

    with pytest.raises(ValidationError) as exc:
        do_bind_api_token_to_nas(radius_token[0], nas=nas_a, acting_user=admin)

    assert exc.value.code == "token_revoked"
    assert not ApiTokenNas.objects.exists()


def test_binding_is_audited_and_binding_twice_keeps_one_row(nas_a, radius_token, admin):
    first = do_bind_api_token_to_nas(radius_token[0], nas=nas_a, acting_user=admin)
    again = do_bind_api_token_to_nas(radius_token[0], nas=nas_a, acting_user=admin)

    assert first.pk == again.pk
    assert list(AuditEvent.objects.filter(action="api.token_nas_bound").values_list("actor_id", "after")) == [
        (admin.pk, {"nas": nas_a.pk, "nas_name": "bras-a", "ip_address": "127.0.0.1"})
    ]


def test_an_operator_cannot_bind(nas_a, radius_token, operator):
    with pytest.raises(PermissionDenied):
        do_bind_api_token_to_nas(radius_token[0], nas=nas_a, acting_user=operator)

    assert not ApiTokenNas.objects.exists()


def test_create_radius_token_command_makes_a_service_account_and_a_working_bound_token(customer, nas_a, nas_b):
    out, err = io.StringIO(), io.StringIO()

    call_command("create_radius_token", "--nas", "bras-a", "--nas", "127.0.0.1", stdout=out, stderr=err)

    plaintext = out.getvalue().strip()
    account = StaffUser.objects.get(username="freeradius")
    assert (account.is_service_account, account.role) == (True, Role.CASHIER)
    assert list(ApiTokenNas.objects.values_list("token__user__username", "nas__name")) == [("freeradius", "bras-a")]
    assert "bras-a (127.0.0.1)" in err.getvalue()
    accepted = _post(plaintext, "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1")
    refused = _post(plaintext, "authorize", User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.2")
    assert (accepted.status_code, refused.status_code) == (200, 403)


def test_create_radius_token_command_refuses_a_person_and_an_unknown_nas(nas_a, admin):
    with pytest.raises(CommandError, match="not one"):
        call_command("create_radius_token", "--nas", "bras-a", "--user", "admin", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no NAS 'bras-z'"):
        call_command("create_radius_token", "--nas", "bras-z", stdout=io.StringIO())

    assert not ApiTokenNas.objects.exists()
    assert list(admin.api_tokens.all()) == []
    assert not StaffUser.objects.filter(username="freeradius").exists()


def test_create_radius_token_refuses_no_nas(radius_token):
    with pytest.raises(ValidationError) as exc:
        do_create_radius_token(user=radius_token[0].user, name="FreeRADIUS 2", nas=[])

    assert exc.value.code == "nas_required"
    assert radius_token[0].user.api_tokens.count() == 1


# --- the admin site --------------------------------------------------------------------------------------


def test_the_admin_binds_a_service_token_and_offers_no_persons_token(nas_a, radius_token, admin):
    person_token, _plaintext = do_create_api_token(user=admin, name="scripts")
    client = Client()
    client.force_login(admin)

    form = client.get("/staff/admin/api/apitokennas/add/")
    created = client.post("/staff/admin/api/apitokennas/add/", {"token": radius_token[0].pk, "nas": nas_a.pk})
    refused = client.post("/staff/admin/api/apitokennas/add/", {"token": person_token.pk, "nas": nas_a.pk})

    assert form.status_code == 200
    assert f'value="{radius_token[0].pk}"' in form.content.decode()
    assert f'value="{person_token.pk}"' not in form.content.decode()
    assert created.status_code == 302
    assert refused.status_code == 200  # the form again, with the error
    assert list(ApiTokenNas.objects.values_list("token_id", "nas_id")) == [(radius_token[0].pk, nas_a.pk)]
    assert AuditEvent.objects.filter(action="api.token_nas_bound", actor_id=admin.pk).count() == 1
