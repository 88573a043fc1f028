"""Two-factor authentication for staff: TOTP (RFC 6238) codes, recovery codes, the required roles, resets."""

import datetime as dt
import os
import secrets
import subprocess
import sys

import pytest
import time_machine
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from abonent.core.models import AuditEvent, Branch
from abonent.staff.models import LoginAttempt, StaffUser
from abonent.staff.permissions import Role
from abonent.staff.two_factor import (
    CodeCheck,
    do_confirm_two_factor,
    do_reset_two_factor,
    do_start_two_factor_enrolment,
    recovery_codes_left,
)

PASSWORD = "s3cret-pass!"
MONDAY = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen():
    # TOTP codes are a function of the time: freeze it, and move it on by whole 30-second steps.
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


def current_code(device: TOTPDevice) -> str:
    """The code an authenticator app shows now (RFC 6238, computed independently of the device's verify)."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    return "000000" if current_code(device) != "000000" else "111111"


def enrol(user, traveller) -> tuple[TOTPDevice, list[str]]:
    """Turn two-factor authentication on for ``user`` through the actions, then move past the step used."""
    device = do_start_two_factor_enrolment(user)
    enrolment = do_confirm_two_factor(user, code=current_code(device))
    assert enrolment.result.check is CodeCheck.ACCEPTED
    # The code just used cannot be used again (no replay): the next login needs the next step's code.
    traveller.shift(dt.timedelta(seconds=30))
    device.refresh_from_db()
    user.refresh_from_db()
    return device, enrolment.recovery_codes


@pytest.fixture
def olga(make_staff):
    return make_staff(Role.OPERATOR, username="olga", password=PASSWORD)


def post_password(client, username="olga", password=PASSWORD, ip="10.0.0.1", next_url=""):
    return client.post("/staff/", {"username": username, "password": password, "next": next_url}, REMOTE_ADDR=ip)


def post_code(client, code, ip="10.0.0.1"):
    return client.post("/staff/login/code/", {"code": code}, REMOTE_ADDR=ip)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_rfc6238_code_completes_the_login(client, olga, frozen):
    device, _codes = enrol(olga, frozen)

    response = post_password(client)
    assert response.status_code == 302 and response["Location"] == "/staff/login/code/"
    assert not logged_in(client)
    assert client.get("/staff/subscribers/").status_code == 302

    response = post_code(client, current_code(device))
    assert response.status_code == 302 and response["Location"] == "/staff/dashboard/"
    assert client.get("/staff/subscribers/").status_code == 200
    assert list(LoginAttempt.objects.values_list("username", "succeeded")) == [("olga", True)]
    login_event = AuditEvent.objects.get(action="staff.login")
    assert login_event.actor == olga and login_event.after == {"second_factor": "totp"}


def test_rfc6238_appendix_b_vectors_are_accepted(client, olga):
    """The RFC's own SHA-1 test key and times: the six-digit codes are the last six digits of its table."""
    with time_machine.travel(dt.datetime.fromtimestamp(1111111109, dt.UTC), tick=False):
        device = do_start_two_factor_enrolment(olga)
        device.key = b"12345678901234567890".hex()
        device.save(update_fields=["key"])
        assert do_confirm_two_factor(olga, code="081804").result.check is CodeCheck.ACCEPTED  # 07081804
    with time_machine.travel(dt.datetime.fromtimestamp(1234567890, dt.UTC), tick=False):
        post_password(client)
        assert post_code(client, "005924").status_code == 302  # 89005924
        assert logged_in(client)


def test_a_code_is_accepted_once_only(client, olga, frozen):
    device, _codes = enrol(olga, frozen)
    code = current_code(device)
    post_password(client)
    assert post_code(client, code).status_code == 302

    frozen.shift(dt.timedelta(seconds=5))
    other = Client()
    post_password(other)
    assert post_code(other, code).status_code == 401
    assert not logged_in(other)


def test_wrong_code_is_refused_and_counted_toward_the_lockout(client, olga, frozen, settings):
    settings.ABONENT_LOGIN_MAX_FAILURES = 3
    device, _codes = enrol(olga, frozen)
    post_password(client)
    for _ in range(3):
        response = post_code(client, wrong_code(device))
        assert response.status_code == 401
        assert "Wrong code." in response.content.decode()
        # Past django-otp's own back-off (1, 2, 4 s), so each try reaches the code check.
        frozen.shift(dt.timedelta(seconds=10))

    response = post_code(client, current_code(device))
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert not logged_in(client)
    # The password alone is refused too: the wrong codes locked the login.
    assert post_password(Client()).status_code == 429
    assert list(LoginAttempt.objects.values_list("succeeded", flat=True)) == [False, False, False]


def test_the_right_password_does_not_reset_the_count_of_wrong_codes(client, olga, frozen, settings):
    settings.ABONENT_LOGIN_MAX_FAILURES = 3
    device, _codes = enrol(olga, frozen)
    for _ in range(3):
        # A fresh password step before every guess: it must not count as the login succeeding.
        assert post_password(client).status_code == 302
        assert post_code(client, wrong_code(device)).status_code == 401
        frozen.shift(dt.timedelta(seconds=10))
    assert post_password(client).status_code == 429
    assert not logged_in(client)


def test_a_code_right_after_a_wrong_one_waits_for_the_back_off(client, olga, frozen):
    device, _codes = enrol(olga, frozen)
    post_password(client)
    assert post_code(client, wrong_code(device)).status_code == 401

    response = post_code(client, current_code(device))
    assert response.status_code == 429
    assert "Too many wrong codes in a row. Try again in 1 second." in response.content.decode()
    assert not logged_in(client)
    # Not checked, so not an attempt either.
    assert LoginAttempt.objects.count() == 1

    frozen.shift(dt.timedelta(seconds=2))
    assert post_code(client, current_code(device)).status_code == 302


def test_the_code_step_expires(client, olga, frozen):
    device, _codes = enrol(olga, frozen)
    post_password(client)
    frozen.shift(dt.timedelta(minutes=6))
    response = post_code(client, current_code(device))
    assert response.status_code == 302 and response["Location"] == "/staff/"
    assert not logged_in(client)
    assert LoginAttempt.objects.count() == 0


def test_the_code_step_without_the_password_step_goes_to_the_login(client, olga, frozen):
    device, _codes = enrol(olga, frozen)
    response = post_code(client, current_code(device))
    assert response.status_code == 302 and response["Location"] == "/staff/"
    assert not logged_in(client)


def test_next_survives_the_code_step(client, olga, frozen):
    device, _codes = enrol(olga, frozen)
    post_password(client, next_url="/staff/catalog/")
    assert post_code(client, current_code(device))["Location"] == "/staff/catalog/"


def test_a_recovery_code_works_once_only(client, olga, frozen):
    _device, codes = enrol(olga, frozen)
    assert len(codes) == 10 and len(set(codes)) == 10

    post_password(client)
    # As printed on the recovery page: two groups of four, upper case allowed.
    printed = f"{codes[3][:4]}-{codes[3][4:]}".upper()
    response = post_code(client, printed)
    assert response.status_code == 302
    assert logged_in(client)
    assert recovery_codes_left(olga) == 9
    event = AuditEvent.objects.get(action="staff.login")
    assert event.after == {"second_factor": "recovery_code", "recovery_codes_left": 9}

    frozen.shift(dt.timedelta(seconds=10))
    other = Client()
    post_password(other)
    assert post_code(other, printed).status_code == 401
    assert not logged_in(other)
    assert recovery_codes_left(olga) == 9


def test_a_wrong_recovery_code_does_not_hold_back_the_authenticator(client, olga, frozen):
    device, _codes = enrol(olga, frozen)
    post_password(client)
    assert post_code(client, "zzzzzzzz").status_code == 401
    assert post_code(client, current_code(device)).status_code == 302


@pytest.fixture
def require_2fa(settings):
    settings.ABONENT_REQUIRE_2FA_ROLES = ["admin", "cashier"]


def test_a_required_role_without_a_device_reaches_only_enrolment(client, make_staff, require_2fa):
    make_staff(Role.CASHIER, username="karina", password=PASSWORD)
    response = post_password(client, "karina")
    assert response.status_code == 302
    assert logged_in(client)

    response = client.get("/staff/subscribers/")
    assert response.status_code == 302
    assert response["Location"] == "/staff/two-factor/setup/?next=%2Fstaff%2Fsubscribers%2F"
    assert client.get("/staff/two-factor/")["Location"].startswith("/staff/two-factor/setup/")
    htmx = client.get("/staff/subscribers/", headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"].startswith("/staff/two-factor/setup/")
    assert client.get("/staff/two-factor/setup/").status_code == 200


def test_an_admin_without_a_device_cannot_use_the_admin_site(client, admin, require_2fa):
    client.force_login(admin)
    assert client.get("/staff/admin/")["Location"] == "/staff/two-factor/setup/?next=%2Fstaff%2Fadmin%2F"
    response = client.post("/staff/admin/core/branch/add/", {"code": "klin", "name": "Клин", "is_active": "on"})
    assert response.status_code == 302 and response["Location"].startswith("/staff/two-factor/setup/")
    assert not Branch.objects.filter(code="klin").exists()


def test_enrolment_shows_a_qr_code_then_the_recovery_codes_once(client, admin, require_2fa, frozen):
    client.force_login(admin)
    page = client.get("/staff/two-factor/setup/?next=/staff/admin/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<svg" in body and 'id="totp-secret"' in body
    # A reload shows the same secret: the app may have scanned the first one.
    assert client.get("/staff/two-factor/setup/").content.decode().count(page.context["secret"]) == 1
    device = TOTPDevice.objects.get(user=admin)
    assert page.context["secret"].replace(" ", "") in device.config_url
    assert "issuer=Abonent" in device.config_url

    response = client.post("/staff/two-factor/setup/", {"code": wrong_code(device)})
    assert response.status_code == 422
    admin.refresh_from_db()
    assert not admin.two_factor_enabled
    assert client.get("/staff/admin/").status_code == 302

    frozen.shift(dt.timedelta(seconds=2))
    response = client.post("/staff/two-factor/setup/", {"code": current_code(device), "next": "/staff/admin/"})
    assert response.status_code == 200
    codes = response.context["codes"]
    assert len(codes) == 10
    assert all(code.replace("-", "") in StaticToken.objects.values_list("token", flat=True) for code in codes)
    assert 'href="/staff/admin/"' in response.content.decode()
    admin.refresh_from_db()
    assert admin.two_factor_enabled
    assert AuditEvent.objects.filter(action="staff.two_factor_enabled", actor=admin).count() == 1

    # The session that typed the code is verified: the console and the admin open now.
    assert client.get("/staff/admin/").status_code == 200
    assert client.get("/staff/subscribers/").status_code == 200
    # The codes are not shown again.
    assert client.get("/staff/two-factor/setup/")["Location"] == "/staff/two-factor/"
    assert codes[0] not in client.get("/staff/two-factor/").content.decode()


def test_after_enrolment_the_login_asks_for_the_code(client, make_staff, require_2fa, frozen):
    cashier = make_staff(Role.CASHIER, username="karina", password=PASSWORD)
    device, _codes = enrol(cashier, frozen)
    assert post_password(client, "karina")["Location"] == "/staff/login/code/"
    assert post_code(client, current_code(device)).status_code == 302
    assert client.get("/staff/subscribers/").status_code == 200


def test_an_api_token_needs_no_second_factor(api_client, admin, require_2fa):
    # The token's owner is an administrator with no authenticator, whom the console would send to enrolment.
    response = api_client.get("/api/v1/subscribers")
    assert response.status_code == 200


def test_with_the_setting_off_no_code_is_asked(client, admin, settings):
    settings.ABONENT_REQUIRE_2FA_ROLES = []
    response = post_password(client, "admin", "s3cret-pass!")
    assert response.status_code == 302 and response["Location"] == "/staff/dashboard/"
    assert client.get("/staff/subscribers/").status_code == 200
    assert client.get("/staff/admin/").status_code == 200


def test_outside_production_only_the_lawful_officer_must_use_it_by_default(settings):
    from abonent import settings as abonent_settings

    assert abonent_settings.ENV != "production"
    assert abonent_settings.ABONENT_REQUIRE_2FA_ROLES == ["lawful"]


def _settings_value(env: dict, name: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_")}
    production = {
        "ABONENT_ENV": "production",
        "ABONENT_SECRET_KEY": secrets.token_urlsafe(50),
        "ABONENT_ALLOWED_HOSTS": "billing.example.ru",
    }
    result = subprocess.run(
        [sys.executable, "-c", f"import abonent.settings as s; print(s.{name})"],
        env={**clean, **production, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_requires_it_of_admins_cashiers_and_lawful_officers_unless_set():
    assert _settings_value({}, "ABONENT_REQUIRE_2FA_ROLES") == "['admin', 'cashier', 'lawful']"
    assert _settings_value({"ABONENT_REQUIRE_2FA_ROLES": "none"}, "ABONENT_REQUIRE_2FA_ROLES") == "[]"


def test_an_unknown_role_in_the_setting_fails_the_checks(settings):
    settings.ABONENT_REQUIRE_2FA_ROLES = ["admin", "casher"]
    errors = [e for e in run_checks() if e.id == "staff.E001"]
    assert len(errors) == 1 and "casher" in errors[0].msg


def test_a_session_from_before_enrolment_is_signed_out(client, olga, frozen):
    client.force_login(olga)
    assert client.get("/staff/subscribers/").status_code == 200
    # Meanwhile, in another browser, the factor is turned on.
    enrol(olga, frozen)
    response = client.get("/staff/subscribers/")
    assert response.status_code == 302 and response["Location"] == "/staff/?next=/staff/subscribers/"
    assert not logged_in(client)


def test_an_optional_role_may_use_the_console_without_it(client, olga, require_2fa):
    client.force_login(olga)
    assert client.get("/staff/subscribers/").status_code == 200
    assert client.get("/staff/two-factor/").status_code == 200


@pytest.fixture
def olga_signed_in(client, olga, frozen):
    device, codes = enrol(olga, frozen)
    post_password(client)
    assert post_code(client, current_code(device)).status_code == 302
    frozen.shift(dt.timedelta(seconds=30))
    return device, codes


def test_turning_it_off_needs_the_password_and_a_code(client, olga, olga_signed_in, frozen):
    device, _codes = olga_signed_in
    response = client.post(
        "/staff/two-factor/disable/", {"disable-password": "wrong", "disable-code": current_code(device)}
    )
    assert response.status_code == 422
    assert "Wrong password or code." in response.content.decode()
    olga.refresh_from_db()
    assert olga.two_factor_enabled
    # A wrong password there is a failed login attempt: a borrowed session cannot guess it without limit.
    assert LoginAttempt.objects.filter(username="olga", succeeded=False).count() == 1

    response = client.post(
        "/staff/two-factor/disable/", {"disable-password": PASSWORD, "disable-code": current_code(device)}
    )
    assert response.status_code == 302 and response["Location"] == "/staff/two-factor/"
    olga.refresh_from_db()
    assert not olga.two_factor_enabled
    assert not TOTPDevice.objects.filter(user=olga).exists() and not StaticDevice.objects.filter(user=olga).exists()
    event = AuditEvent.objects.get(action="staff.two_factor_reset")
    assert event.actor == olga and event.before == {"two_factor_enabled": True}
    # The operator role does not require it: the console stays open, and the next login asks for no code.
    assert client.get("/staff/subscribers/").status_code == 200
    client.post("/staff/logout/")
    assert post_password(client)["Location"] == "/staff/dashboard/"


def test_a_required_role_that_turns_it_off_sets_it_up_again(client, make_staff, require_2fa, frozen):
    cashier = make_staff(Role.CASHIER, username="karina", password=PASSWORD)
    device, _codes = enrol(cashier, frozen)
    post_password(client, "karina")
    post_code(client, current_code(device))
    frozen.shift(dt.timedelta(seconds=30))
    client.post("/staff/two-factor/disable/", {"disable-password": PASSWORD, "disable-code": current_code(device)})
    assert client.get("/staff/subscribers/")["Location"].startswith("/staff/two-factor/setup/")


def test_new_recovery_codes_replace_the_old_ones(client, olga, olga_signed_in, frozen):
    device, old_codes = olga_signed_in
    response = client.post(
        "/staff/two-factor/recovery-codes/", {"codes-password": PASSWORD, "codes-code": current_code(device)}
    )
    assert response.status_code == 200
    new_codes = [c.replace("-", "") for c in response.context["codes"]]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert set(StaticToken.objects.filter(device__user=olga).values_list("token", flat=True)) == set(new_codes)
    assert AuditEvent.objects.filter(action="staff.recovery_codes_regenerated", actor=olga).count() == 1


def test_an_admin_resets_another_users_two_factor_in_the_admin(client, admin, olga, frozen):
    enrol(olga, frozen)
    client.force_login(admin)
    response = client.post(
        "/staff/admin/staff/staffuser/", {"action": "reset_two_factor", "_selected_action": [olga.pk]}
    )
    assert response.status_code == 302
    olga.refresh_from_db()
    assert not olga.two_factor_enabled
    assert not TOTPDevice.objects.filter(user=olga).exists()
    assert not StaticDevice.objects.filter(user=olga).exists()
    event = AuditEvent.objects.get(action="staff.two_factor_reset")
    assert (event.actor, event.object_id, event.reason) == (admin, str(olga.pk), "Reset in the administration site")
    # With the factor reset, her password alone signs her in (her role does not require one).
    assert post_password(Client())["Location"] == "/staff/dashboard/"


def test_only_administrators_reset_other_users_two_factor(client, olga, make_staff, frozen):
    enrol(olga, frozen)
    client.force_login(make_staff(Role.OPERATOR))
    response = client.post(
        "/staff/admin/staff/staffuser/", {"action": "reset_two_factor", "_selected_action": [olga.pk]}
    )
    assert response.status_code == 302 and response["Location"].startswith("/staff/admin/login/")
    olga.refresh_from_db()
    assert olga.two_factor_enabled
    assert TOTPDevice.objects.filter(user=olga, confirmed=True).count() == 1
    assert not AuditEvent.objects.filter(action="staff.two_factor_reset").exists()


def test_a_reset_ends_the_verified_sessions_of_a_required_role(client, make_staff, require_2fa, frozen):
    cashier = make_staff(Role.CASHIER, username="karina", password=PASSWORD)
    device, _codes = enrol(cashier, frozen)
    post_password(client, "karina")
    post_code(client, current_code(device))
    assert client.get("/staff/subscribers/").status_code == 200
    do_reset_two_factor(cashier, acting_user=None, reason="lost phone")
    assert client.get("/staff/subscribers/")["Location"].startswith("/staff/two-factor/setup/")


def test_the_reset_command_is_audited(olga, frozen, capsys):
    enrol(olga, frozen)
    call_command("reset_two_factor", user="olga", reason="ticket 42")
    assert "reset for olga" in capsys.readouterr().out
    assert not StaffUser.objects.get(pk=olga.pk).two_factor_enabled
    event = AuditEvent.objects.get(action="staff.two_factor_reset")
    assert (event.actor, event.actor_label, event.reason) == (None, "system", "ticket 42")


def test_device_pages_are_not_in_the_admin(client, admin):
    client.force_login(admin)
    assert client.get("/staff/admin/otp_totp/totpdevice/").status_code == 404
    assert client.get("/staff/admin/otp_static/staticdevice/").status_code == 404
