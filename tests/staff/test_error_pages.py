"""The console's own 403, 404 and 500 pages (issue 17): a cashier opening the admin gets a 403 page instead of two
redirects in a loop, and a refused page says which permission is missing and which roles hold it."""

import pytest
from django.template.loader import render_to_string
from django.test import Client

from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_cashier_opening_the_admin_gets_a_403_page_not_a_redirect_loop(make_staff):
    cashier = client_of(make_staff(Role.CASHIER))
    response = cashier.get("/staff/admin/", follow=True)
    # Before: /staff/admin/ → /staff/admin/login/ → /staff/?next=/staff/admin/ → /staff/admin/ … (the browser's
    # ERR_TOO_MANY_REDIRECTS; the test client's RedirectCycleError).
    assert response.redirect_chain == [("/staff/admin/login/?next=/staff/admin/", 302)]
    assert response.status_code == 403
    body = response.content.decode()
    assert "The administration pages are for administrators without a branch limit." in body
    assert 'id="error-403"' in body and "navbar" in body  # the console's page, with its menu


def test_a_branch_limited_administrator_is_refused_the_admin_the_same_way(make_staff, branch):
    admin = client_of(make_staff(Role.ADMIN, branches=[branch]))
    assert admin.get("/staff/admin/", follow=True).status_code == 403


def test_anyone_not_signed_in_goes_from_the_admin_to_the_consoles_login(client, db):
    response = client.get("/staff/admin/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith("/staff/?next=")


def test_the_administrator_still_gets_the_admin(admin):
    assert client_of(admin).get("/staff/admin/").status_code == 200


def test_a_refused_page_names_the_missing_permission_and_the_roles_that_hold_it(make_staff):
    cashier = client_of(make_staff(Role.CASHIER))
    response = cashier.get("/staff/subscribers/new/")
    body = response.content.decode()
    assert response.status_code == 403
    assert "Your role does not allow you to add subscribers." in body
    assert '<code id="missing-permission">subscriber.create</code>' in body
    assert "Roles that allow it: Administrator, Operator." in body
    assert "403 Forbidden" not in body


def test_a_refused_page_in_russian_keeps_the_console(make_staff):
    cashier = client_of(make_staff(Role.CASHIER))
    body = cashier.get("/staff/subscribers/new/", headers={"Accept-Language": "ru"}).content.decode()
    assert '<html lang="ru">' in body and 'id="error-403"' in body


def test_an_unknown_subscriber_is_the_consoles_404_page(operator_client):
    response = operator_client.get("/staff/subscribers/99999999/")
    body = response.content.decode()
    assert response.status_code == 404 and 'id="error-404"' in body and "Page not found" in body


def test_the_500_page_needs_no_request():
    body = render_to_string("500.html")
    assert 'id="error-500"' in body and "Server error" in body
