"""The Django admin (/staff/admin/) is for administrators without a branch limit (issue 11 review).

Its pages know no branches: a branch-limited administrator there listed every branch's sessions, logins and
authentication attempts, and could take its own branch limit off. Now such an administrator is not ``is_staff``:
the admin sends it to the login, and it works in the console, which keeps to its branches.
"""

from __future__ import annotations

from django.test import Client

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network import accounting
from abonent.network.models import AuthAttempt, AuthOutcome, RejectReason
from abonent.staff.permissions import Role

ADMIN_PAGES = (
    "/staff/admin/",
    "/staff/admin/network/session/",
    "/staff/admin/network/login/",
    "/staff/admin/network/authattempt/",
)


def _session_of(customer, nas):
    accounting.write_batch(
        [
            accounting.AcctRecord(
                status=1,
                nas_id=nas.pk,
                event_time=clock.now(),
                unique_id="u-1",
                acct_session_id="s-1",
                username="ivanov",
                subscriber_id=customer.pk,
                framed_ip="100.64.7.7",
                calling_station_id="AA:BB:CC:00:11:22",
            )
        ]
    )


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_a_branch_limited_admin_is_sent_from_every_admin_page_to_the_login(
    customer, make_nas, make_staff, other_branch
):
    _session_of(customer, make_nas())
    AuthAttempt.objects.create(
        created_at=clock.now(),
        nas=make_nas(name="bras-2", ip_address="127.0.0.2"),
        username="ivanov",
        subscriber_id=customer.pk,
        outcome=AuthOutcome.REJECT,
        reason=RejectReason.BAD_PASSWORD,
        calling_station_id="AA:BB:CC:00:11:33",
    )
    client = _client(make_staff(Role.ADMIN, branches=[other_branch]))

    responses = [client.get(page) for page in ADMIN_PAGES]

    assert [r.status_code for r in responses] == [302] * len(ADMIN_PAGES)
    assert all(r["Location"].startswith("/staff/admin/login/") for r in responses)


def test_a_branch_limited_admin_cannot_lift_its_own_branch_limit(make_staff, branch, other_branch):
    admin_elsewhere = make_staff(Role.ADMIN, branches=[other_branch])
    client = _client(admin_elsewhere)
    audit_rows = AuditEvent.objects.count()

    response = client.post(
        f"/staff/admin/staff/staffuser/{admin_elsewhere.pk}/change/",
        {
            "username": admin_elsewhere.username,
            "full_name": admin_elsewhere.full_name,
            "role": Role.ADMIN,
            "branches": [branch.pk, other_branch.pk],
            "is_active": "on",
        },
    )

    assert response.status_code == 302 and response["Location"].startswith("/staff/admin/login/")
    admin_elsewhere.refresh_from_db()
    assert list(admin_elsewhere.branches.values_list("pk", flat=True)) == [other_branch.pk]
    assert AuditEvent.objects.count() == audit_rows


def test_a_branch_limited_admin_works_in_the_console_on_its_branches(
    customer, make_nas, make_staff, make_subscriber, other_branch
):
    """The console keeps to the branches: the subscriber and session of another branch are not listed."""
    _session_of(customer, make_nas())
    own = make_subscriber(last_name="Петров", phone="+79161234000", branch_obj=other_branch)
    client = _client(make_staff(Role.ADMIN, branches=[other_branch]))

    subscribers = client.get("/staff/subscribers/")
    sessions = client.get("/staff/network/sessions/")

    assert (subscribers.status_code, sessions.status_code) == (200, 200)
    assert own.account_number in subscribers.content.decode()
    assert customer.account_number not in subscribers.content.decode()
    assert "100.64.7.7" not in sessions.content.decode()
    assert "/staff/admin/" not in subscribers.content.decode()  # no "Administration" in the menu


def test_an_admin_without_a_branch_limit_keeps_the_admin_site(customer, make_nas, admin):
    _session_of(customer, make_nas())
    client = _client(admin)

    responses = [client.get(page) for page in ADMIN_PAGES]
    console = client.get("/staff/subscribers/")

    assert [r.status_code for r in responses] == [200] * len(ADMIN_PAGES)
    assert "100.64.7.7" in responses[1].content.decode()
    assert 'href="/staff/admin/"' in console.content.decode()
