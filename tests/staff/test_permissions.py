import pytest
from django.core.exceptions import PermissionDenied

from abonent.staff.permissions import ROLE_PERMISSIONS, Perm, Role, check_branch, has_perm, scope_to_branches
from abonent.subscribers.models import Subscriber


def test_every_role_has_a_permission_set_and_admin_has_all_but_speaking_for_a_nas_and_lawful_export():
    assert set(ROLE_PERMISSIONS) == set(Role.values)
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Perm) - {Perm.RADIUS_SERVICE, Perm.LAWFUL_EXPORT}
    assert not any(Perm.RADIUS_SERVICE in granted for granted in ROLE_PERMISSIONS.values())


@pytest.mark.parametrize(
    ("role", "perm", "allowed"),
    [
        (Role.OPERATOR, Perm.SUBSCRIBER_CREATE, True),
        (Role.OPERATOR, Perm.STAFF_MANAGE, False),
        (Role.CASHIER, Perm.SUBSCRIBER_VIEW, True),
        (Role.CASHIER, Perm.SUBSCRIBER_EDIT, False),
        (Role.SUPPORT, Perm.SUBSCRIBER_VIEW_PERSONAL, False),
        (Role.ENGINEER, Perm.EQUIPMENT_MANAGE, True),
        (Role.ENGINEER, Perm.SUBSCRIBER_CLOSE, False),
    ],
)
def test_role_permissions(make_staff, role, perm, allowed):
    user = make_staff(role)
    assert has_perm(user, perm) is allowed
    assert user.has_perm(str(perm)) is allowed  # Django's API answers from the same table


def test_inactive_users_have_no_permissions(make_staff):
    user = make_staff(Role.ADMIN)
    user.is_active = False
    assert not has_perm(user, Perm.SUBSCRIBER_VIEW)


def test_unknown_permission_is_denied(admin):
    assert not has_perm(admin, "billing.steal")


def test_branch_limited_user_sees_only_their_branches(make_staff, make_subscriber, branch, other_branch):
    mine = make_subscriber(last_name="Тверской")
    make_subscriber(last_name="Клинский", branch_obj=other_branch)
    limited = make_staff(Role.OPERATOR, branches=[branch])
    assert list(scope_to_branches(Subscriber.objects.all(), limited)) == [mine]
    check_branch(limited, branch.pk)
    with pytest.raises(PermissionDenied):
        check_branch(limited, other_branch.pk)


def test_user_without_branch_limits_sees_all(operator, make_subscriber, other_branch):
    make_subscriber()
    make_subscriber(branch_obj=other_branch, phone="+79161234568")
    assert scope_to_branches(Subscriber.objects.all(), operator).count() == 2


def test_only_administrators_reach_the_admin_site(make_staff, client):
    operator = make_staff(Role.OPERATOR)
    client.force_login(operator)
    assert client.get("/staff/admin/").status_code == 302
    admin_user = make_staff(Role.ADMIN)
    client.force_login(admin_user)
    assert client.get("/staff/admin/").status_code == 200
    assert client.get("/staff/admin/staff/staffuser/").status_code == 200
    assert client.get("/staff/admin/core/branch/add/").status_code == 200


def test_admin_login_goes_through_the_rate_limited_console_login(client, db):
    response = client.get("/staff/admin/login/?next=/staff/admin/")
    assert response.status_code == 302 and response["Location"] == "/staff/?next=/staff/admin/"


def test_branch_created_in_admin_is_audited(make_staff, client):
    from abonent.core.models import AuditEvent, Branch

    client.force_login(make_staff(Role.ADMIN))
    response = client.post("/staff/admin/core/branch/add/", {"code": "tver2", "name": "Тверь-2", "is_active": "on"})
    assert response.status_code == 302
    branch = Branch.objects.get(code="tver2")
    event = AuditEvent.objects.get(action="admin.branch_created")
    assert event.object_id == str(branch.pk) and event.after["name"] == "Тверь-2"
