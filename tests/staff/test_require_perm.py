"""``require_perm``: the one access decorator of the console's views (catalog, network, subscribers)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory

from abonent.staff.permissions import Perm, Role, require_perm

calls = []


@require_perm(Perm.CATALOG_MANAGE)
def edit_plan(request, pk):
    """Change a plan."""
    calls.append(pk)
    return HttpResponse(f"plan {pk}")


@pytest.fixture(autouse=True)
def _no_calls():
    calls.clear()


def get(user):
    request = RequestFactory().get("/staff/catalog/plans/7/")
    request.user = user
    return request


def test_anonymous_is_sent_to_the_login_page_and_the_view_does_not_run():
    response = edit_plan(get(AnonymousUser()), pk=7)
    assert response.status_code == 302
    assert response["Location"] == "/staff/?next=/staff/catalog/plans/7/"  # LOGIN_URL is staff:login
    assert calls == []


def test_staff_without_the_permission_are_denied_and_the_view_does_not_run(make_staff):
    with pytest.raises(PermissionDenied):
        edit_plan(get(make_staff(Role.OPERATOR)), pk=7)
    assert calls == []


def test_staff_with_the_permission_reach_the_view(make_staff):
    response = edit_plan(get(make_staff(Role.ADMIN)), pk=7)
    assert (response.status_code, response.content, calls) == (200, b"plan 7", [7])


def test_the_view_keeps_its_name_and_docstring():
    assert (edit_plan.__name__, edit_plan.__doc__) == ("edit_plan", "Change a plan.")
