"""The exemptions and rules pages: lists, forms with bad input (field errors, never a 500), permissions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.dunning import actions
from abonent.dunning.models import DunningRule, Exemption
from abonent.staff.permissions import Role
from abonent.subscribers.models import SubscriberGroup

pytestmark = pytest.mark.django_db
TODAY = dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def november():
    with clock.travel_to(TODAY):
        yield


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def hospitals(db):
    return SubscriberGroup.objects.create(name="Больницы")


def test_an_exemption_for_an_account_and_one_for_a_group(make_subscriber, admin, hospitals):
    customer = make_subscriber()
    client = client_of(admin)
    response = client.post(
        reverse("dunning:exemptions"),
        {"account_number": customer.account_number, "reason": "Школа", "expires_on": "2026-12-31"},
    )
    assert response.status_code == 302
    client.post(reverse("dunning:exemptions"), {"group": hospitals.pk, "reason": "ЦРБ", "expires_on": "2027-06-30"})
    assert sorted(Exemption.objects.values_list("reason", "subscriber_id", "group_id")) == [
        ("ЦРБ", None, hospitals.pk),
        ("Школа", customer.pk, None),
    ]
    page = client.get(reverse("dunning:exemptions"), {"status": "active"}).content.decode()
    assert page.count('class="exemption-row"') == 2


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"account_number": "999999", "reason": "Школа", "expires_on": "2026-12-31"}, "No such account."),
        ({"reason": "Школа", "expires_on": "2026-12-31"}, "Give an account number or choose a group, not both."),
        ({"account_number": "ACC", "reason": "", "expires_on": "2026-12-31"}, "This field is required."),
        ({"account_number": "ACC", "reason": "Школа", "expires_on": "31.12"}, "Enter a valid date."),
        ({"account_number": "ACC", "reason": "Школа", "expires_on": "2026-01-01"}, "The end is before the start."),
        (
            {"account_number": "ACC", "reason": "Школа", "expires_on": "2036-01-01"},
            "At most five years; renew it then.",
        ),
        ({"account_number": "ACC", "reason": "x" * 501, "expires_on": "2026-12-31"}, "at most 500 characters"),
        ({"group": "abc", "reason": "Школа", "expires_on": "2026-12-31"}, "Select a valid choice."),
    ],
)
def test_bad_exemptions_are_field_errors(data, field_error, make_subscriber, operator):
    customer = make_subscriber()
    if data.get("account_number") == "ACC":
        data = {**data, "account_number": customer.account_number}
    response = client_of(operator).post(reverse("dunning:exemptions"), data)
    assert response.status_code == 422
    assert field_error in response.content.decode()
    assert not Exemption.objects.exists()


def test_a_branch_limited_operator_may_not_exempt_a_group_nor_someone_elsewhere(
    make_staff, hospitals, make_subscriber, other_branch, branch
):
    local = make_staff(Role.OPERATOR, branches=[branch])
    stranger = make_subscriber(branch_obj=other_branch)
    client = client_of(local)
    group = client.post(
        reverse("dunning:exemptions"), {"group": hospitals.pk, "reason": "ЦРБ", "expires_on": "2026-12-31"}
    )
    elsewhere = client.post(
        reverse("dunning:exemptions"),
        {"account_number": stranger.account_number, "reason": "ЦРБ", "expires_on": "2026-12-31"},
    )
    assert group.status_code == elsewhere.status_code == 422
    assert "A group spans branches" in group.content.decode() and "No such account." in elsewhere.content.decode()
    assert not Exemption.objects.exists()


def test_revoking_from_the_list(make_subscriber, admin, operator):
    customer = make_subscriber()
    exemption = actions.do_create_exemption(
        subscriber=customer, reason="Школа", expires_on=dt.date(2026, 12, 31), acting_user=admin
    )
    client_of(operator).post(reverse("dunning:exemption_revoke", args=[exemption.pk]))
    again = client_of(operator).post(reverse("dunning:exemption_revoke", args=[exemption.pk]), follow=True)
    exemption.refresh_from_db()
    assert exemption.revoked_by == operator
    assert "The exemption is already revoked." in again.content.decode()
    revoked = client_of(operator).get(reverse("dunning:exemptions"), {"status": "revoked"}).content.decode()
    assert revoked.count('class="exemption-row"') == 1


def test_the_cashier_sees_exemptions_but_may_not_add_or_revoke(make_subscriber, admin, make_staff):
    customer = make_subscriber()
    exemption = actions.do_create_exemption(
        subscriber=customer, reason="Школа", expires_on=dt.date(2026, 12, 31), acting_user=admin
    )
    cashier = client_of(make_staff(Role.CASHIER))
    page = cashier.get(reverse("dunning:exemptions"))
    assert page.status_code == 200 and "New exemption" not in page.content.decode()
    data = {"account_number": customer.account_number, "reason": "Ещё", "expires_on": "2026-12-31"}
    assert cashier.post(reverse("dunning:exemptions"), data).status_code == 403
    assert cashier.post(reverse("dunning:exemption_revoke", args=[exemption.pk])).status_code == 403
    assert Exemption.objects.filter(revoked_at__isnull=True).count() == 1


# --- rules ---------------------------------------------------------------------------------------------------


def test_rules_created_edited_and_deleted(admin, hospitals, make_plan):
    plan = make_plan("p-300", "300.00")
    client = client_of(admin)
    client.post(
        reverse("dunning:rule_create"), {"name": "Все", "scope": "default", "warn_days": 3, "suspend_after_days": 14}
    )
    client.post(
        reverse("dunning:rule_create"),
        {"name": "ЦРБ", "scope": "group", "group": hospitals.pk, "warn_days": 5, "never_suspend": "on"},
    )
    client.post(
        reverse("dunning:rule_create"),
        {"name": "Дешёвый", "scope": "plan", "plan": plan.pk, "warn_days": 1, "suspend_after_days": 7},
    )
    rules = {
        r.name: (r.is_default, r.group_id, r.plan_id, r.warn_days, r.suspend_after_days)
        for r in DunningRule.objects.all()
    }
    assert rules == {
        "Все": (True, None, None, 3, 14),
        "ЦРБ": (False, hospitals.pk, None, 5, None),
        "Дешёвый": (False, None, plan.pk, 1, 7),
    }
    default = DunningRule.objects.get(is_default=True)
    edit = client.get(reverse("dunning:rule_edit", args=[default.pk])).content.decode()
    assert 'value="14"' in edit
    client.post(
        reverse("dunning:rule_edit", args=[default.pk]),
        {"name": "Все", "scope": "default", "warn_days": 4, "suspend_after_days": 21},
    )
    default.refresh_from_db()
    assert (default.warn_days, default.suspend_after_days) == (4, 21)
    client.post(reverse("dunning:rule_delete", args=[default.pk]))
    assert not DunningRule.objects.filter(pk=default.pk).exists()
    assert AuditEvent.objects.filter(action="dunning.rule_delete", actor=admin).count() == 1
    listing = client.get(reverse("dunning:rules")).content.decode()
    assert listing.count('class="rule-row"') == 2 and "never" in listing


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "", "scope": "default", "warn_days": 3, "suspend_after_days": 14}, "This field is required."),
        ({"name": "Г", "scope": "group", "warn_days": 3, "suspend_after_days": 14}, "Choose a group."),
        ({"name": "П", "scope": "plan", "warn_days": 3, "suspend_after_days": 14}, "Choose a plan."),
        ({"name": "Д", "scope": "default", "warn_days": -1, "suspend_after_days": 14}, "greater than or equal to 0"),
        ({"name": "Д", "scope": "default", "warn_days": 400, "suspend_after_days": 14}, "less than or equal to 365"),
        ({"name": "Д", "scope": "default", "warn_days": "три", "suspend_after_days": 14}, "Enter a whole number."),
        ({"name": "Д", "scope": "default", "warn_days": 3}, "Give the days, or tick"),
        ({"name": "Д", "scope": "default", "warn_days": 3, "suspend_after_days": 99999}, "less than or equal to 3650"),
        ({"name": "Д", "scope": "everyone", "warn_days": 3, "suspend_after_days": 14}, "Select a valid choice."),
    ],
)
def test_bad_rules_are_field_errors(data, error, admin):
    response = client_of(admin).post(reverse("dunning:rule_create"), data)
    assert response.status_code == 422
    assert error in response.content.decode()
    assert not DunningRule.objects.exists()


def test_a_second_rule_for_the_same_scope_is_refused(admin, hospitals):
    client = client_of(admin)
    for name in ("Первое", "Второе"):
        response = client.post(
            reverse("dunning:rule_create"), {"name": name, "scope": "default", "warn_days": 3, "suspend_after_days": 14}
        )
    assert response.status_code == 422
    for name in ("Первое", "Второе"):
        response = client.post(
            reverse("dunning:rule_create"),
            {"name": name, "scope": "group", "group": hospitals.pk, "warn_days": 3, "suspend_after_days": 14},
        )
    assert response.status_code == 422
    assert sorted(DunningRule.objects.values_list("name", flat=True)) == ["Первое", "Первое"]


def test_the_operator_reads_rules_and_the_cashier_may_not_change_them(operator, make_staff):
    assert client_of(operator).get(reverse("dunning:rules")).status_code == 200
    cashier = client_of(make_staff(Role.CASHIER))
    assert cashier.get(reverse("dunning:rules")).status_code == 200
    data = {"name": "Все", "scope": "default", "warn_days": 3, "suspend_after_days": 14}
    assert cashier.post(reverse("dunning:rule_create"), data).status_code == 403
    assert not DunningRule.objects.exists()
