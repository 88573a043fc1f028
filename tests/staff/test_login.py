import datetime as dt

import pytest
from django.test import Client

from abonent.core import clock
from abonent.staff.models import LoginAttempt
from abonent.staff.permissions import Role

PASSWORD = "s3cret-pass!"


@pytest.fixture
def user(make_staff):
    return make_staff(Role.OPERATOR, username="olga", password=PASSWORD)


def post_login(client, username, password, ip="10.0.0.1"):
    return client.post("/staff/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_staff_root_shows_the_login_page(client, db):
    response = client.get("/staff/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_login_with_the_right_password_opens_the_dashboard(client, user):
    response = post_login(client, "olga", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/staff/dashboard/"
    assert client.get("/staff/subscribers/").status_code == 200


def test_wrong_password_is_refused_and_recorded(client, user):
    response = post_login(client, "olga", "wrong")
    assert response.status_code == 401
    assert "Wrong login or password." in response.content.decode()
    assert LoginAttempt.objects.filter(username="olga", succeeded=False).count() == 1


def test_login_error_is_translated_to_russian(client, user):
    response = client.post("/staff/", {"username": "olga", "password": "x"}, headers={"Accept-Language": "ru"})
    assert "Неверный логин или пароль." in response.content.decode()


def test_five_failures_lock_the_login_even_for_the_right_password(client, user, settings):
    settings.ABONENT_LOGIN_MAX_FAILURES = 5
    for _ in range(5):
        assert post_login(client, "olga", "wrong").status_code == 401
    response = post_login(client, "olga", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # A locked-out attempt does not even reach the password check, so it is not recorded as one.
    assert LoginAttempt.objects.filter(username="olga").count() == 5


def test_lockout_ends_after_the_window(client, user, settings):
    settings.ABONENT_LOGIN_MAX_FAILURES = 3
    settings.ABONENT_LOGIN_LOCKOUT_SECONDS = 600
    for _ in range(3):
        post_login(client, "olga", "wrong")
    assert post_login(client, "olga", PASSWORD).status_code == 429
    with clock.travel_to(clock.now() + dt.timedelta(minutes=11)):
        assert post_login(client, "olga", PASSWORD).status_code == 302


def test_a_success_resets_the_count_for_that_login(client, user, settings):
    settings.ABONENT_LOGIN_MAX_FAILURES = 3
    post_login(client, "olga", "wrong")
    post_login(client, "olga", "wrong")
    assert post_login(Client(), "olga", PASSWORD).status_code == 302
    post_login(client, "olga", "wrong")
    post_login(client, "olga", "wrong")
    assert post_login(Client(), "olga", PASSWORD).status_code == 302


def test_one_address_guessing_many_logins_is_locked_out(client, make_staff, settings):
    settings.ABONENT_LOGIN_MAX_FAILURES_PER_IP = 4
    for i in range(4):
        post_login(client, f"nobody{i}", "x", ip="10.9.9.9")
    make_staff(Role.OPERATOR, username="ivan", password=PASSWORD)
    assert post_login(client, "ivan", PASSWORD, ip="10.9.9.9").status_code == 429
    assert post_login(Client(), "ivan", PASSWORD, ip="10.1.1.1").status_code == 302


def test_service_accounts_cannot_log_in(client, db):
    from abonent.staff.actions import do_create_staff_user

    do_create_staff_user(username="crm", password=PASSWORD, role=Role.OPERATOR, is_service_account=True)
    assert post_login(client, "crm", PASSWORD).status_code == 401


def test_deactivated_users_cannot_log_in(client, user):
    user.is_active = False
    user.save()
    assert post_login(client, "olga", PASSWORD).status_code == 401


def test_logout_needs_post_and_ends_the_session(client, user):
    post_login(client, "olga", PASSWORD)
    assert client.get("/staff/logout/").status_code == 405
    client.post("/staff/logout/")
    assert client.get("/staff/subscribers/").status_code == 302


def test_next_parameter_cannot_redirect_off_site(client, user):
    response = client.post("/staff/", {"username": "olga", "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/staff/dashboard/"
