"""A new set of recovery codes replaces the codes, not the device sessions were verified with.

Making a new set used to delete the recovery-code device and create another, so every session verified by a
recovery code was signed out on its next request: first of all the session that signed in with one and was
told to "make a new set", right after it was shown the new codes.
"""

import datetime as dt

import pytest
import time_machine
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from abonent.staff.permissions import Role
from abonent.staff.two_factor import CodeCheck, do_confirm_two_factor, do_start_two_factor_enrolment

PASSWORD = "s3cret-pass!"


def _code(device) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.fixture
def frozen():
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def olga(make_staff):
    return make_staff(Role.OPERATOR, username="olga", password=PASSWORD)


def _enrol(user, frozen):
    device = do_start_two_factor_enrolment(user)
    enrolment = do_confirm_two_factor(user, code=_code(device))
    assert enrolment.result.check is CodeCheck.ACCEPTED
    frozen.shift(dt.timedelta(seconds=30))
    return device, enrolment.recovery_codes


def _sign_in_with_recovery_code(client, code: str) -> None:
    assert client.post("/staff/", {"username": "olga", "password": PASSWORD}).status_code == 302
    assert client.post("/staff/login/code/", {"code": code}).status_code == 302
    assert client.get("/staff/two-factor/").status_code == 200


def test_new_recovery_codes_keep_the_session_that_asked_for_them(client, olga, frozen):
    device, codes = _enrol(olga, frozen)
    # Phone left at home: sign in with a recovery code.
    _sign_in_with_recovery_code(client, codes[0])
    recovery_device = StaticDevice.objects.get(user=olga)

    # As the warning after that login says, make a new set (password and a code from the authenticator).
    response = client.post(
        "/staff/two-factor/recovery-codes/", {"codes-password": PASSWORD, "codes-code": _code(device)}
    )
    assert response.status_code == 200 and len(response.context["codes"]) == 10

    # The next page opens: the session is still verified (it used to be sent to "/staff/?next=/staff/two-factor/").
    response = client.get("/staff/two-factor/")
    assert response.status_code == 200, response.get("Location")
    # The same device holds the new set.
    assert list(StaticDevice.objects.filter(user=olga).values_list("pk", flat=True)) == [recovery_device.pk]
    assert StaticToken.objects.filter(device=recovery_device).count() == 10


def test_the_old_recovery_codes_stop_working_and_the_new_ones_work(olga, frozen):
    device, old_codes = _enrol(olga, frozen)
    other_session = Client()
    _sign_in_with_recovery_code(other_session, old_codes[0])
    me = Client()
    me.post("/staff/", {"username": "olga", "password": PASSWORD})
    assert me.post("/staff/login/code/", {"code": _code(device)}).status_code == 302
    frozen.shift(dt.timedelta(seconds=30))

    response = me.post("/staff/two-factor/recovery-codes/", {"codes-password": PASSWORD, "codes-code": _code(device)})
    new_codes = response.context["codes"]

    # Another session verified by a recovery code of the old set stays signed in too.
    assert other_session.get("/staff/two-factor/").status_code == 200
    assert sorted(StaticToken.objects.filter(device__user=olga).values_list("token", flat=True)) == sorted(
        code.replace("-", "") for code in new_codes
    )
    fresh = Client()
    fresh.post("/staff/", {"username": "olga", "password": PASSWORD})
    assert fresh.post("/staff/login/code/", {"code": old_codes[1]}).status_code == 401
    frozen.shift(dt.timedelta(seconds=30))  # past django-otp's back-off after that wrong code
    assert fresh.post("/staff/login/code/", {"code": new_codes[0]}).status_code == 302
