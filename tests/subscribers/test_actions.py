import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role
from abonent.subscribers import actions
from abonent.subscribers.actions import AddressData, ContactData, SubscriberData
from abonent.subscribers.models import (
    ContactPoint,
    Contract,
    Equipment,
    EquipmentAssignment,
    Subscriber,
    SubscriberStatus,
)
from abonent.subscribers.validators import validate_account_number


def counts():
    return (
        Subscriber.objects.count(),
        Contract.objects.count(),
        ContactPoint.objects.count(),
        AuditEvent.objects.filter(action__startswith="subscriber.").count(),
    )


def test_create_subscriber_writes_contract_contacts_search_text_and_audit(make_subscriber, admin):
    subscriber = make_subscriber(last_name="Семёнов", phone="8 (916) 123-45-67")
    assert validate_account_number(subscriber.account_number)
    assert subscriber.display_name == "Семёнов Иван Петрович"
    assert [c.number for c in subscriber.contracts.all()] == [subscriber.account_number]
    assert list(subscriber.contacts.values_list("kind", "value", "is_primary")) == [("phone", "+79161234567", True)]
    subscriber.refresh_from_db()
    assert "семенов" in subscriber.search_text and "79161234567" in subscriber.search_text
    event = AuditEvent.objects.get(action="subscriber.created")
    assert (event.actor, event.subscriber_id, event.after["account_number"]) == (
        admin,
        subscriber.pk,
        subscriber.account_number,
    )


def test_account_numbers_are_consecutive_and_unique(make_subscriber):
    first = make_subscriber(phone="+79161234567")
    second = make_subscriber(phone="+79161234568")
    assert int(second.account_number[:-1]) == int(first.account_number[:-1]) + 1


def test_invalid_phone_writes_nothing(make_subscriber):
    before = counts()
    with pytest.raises(ValidationError) as exc:
        make_subscriber(phone="12345")
    assert exc.value.error_dict["contacts.0.value"][0].code == "phone_invalid"
    assert counts() == before


def test_all_field_errors_are_reported_at_once(branch, admin):
    data = SubscriberData(
        branch_id=branch.pk,
        last_name="",
        first_name="",
        passport_series="1",
        contacts=[ContactData(kind="email", value="not-an-email")],
        addresses=[AddressData(city="", house="")],
    )
    with pytest.raises(ValidationError) as exc:
        actions.do_create_subscriber(data, acting_user=admin)
    assert set(exc.value.error_dict) == {
        "last_name",
        "first_name",
        "passport_series",
        "passport_number",
        "contacts.0.value",
        "addresses.0.city",
        "addresses.0.house",
    }
    assert Subscriber.objects.count() == 0


def test_duplicate_account_number_writes_nothing(make_subscriber):
    existing = make_subscriber()
    before = counts()
    with pytest.raises(ValidationError) as exc:
        make_subscriber(account_number=existing.account_number, phone="+79161234568")
    assert exc.value.error_dict["account_number"][0].code == "account_number_taken"
    assert counts() == before


def test_wrong_check_digit_writes_nothing(make_subscriber):
    with pytest.raises(ValidationError) as exc:
        make_subscriber(account_number="100000008")
    assert exc.value.error_dict["account_number"][0].code == "account_number_check_digit"
    assert Subscriber.objects.count() == 0


def test_a_migrated_account_number_is_kept_and_never_handed_out_again(make_subscriber):
    migrated = make_subscriber(account_number="500000005", phone="+79161234568")
    assert migrated.account_number == "500000005"
    assert int(make_subscriber().account_number[:-1]) == 50000001


def test_organisation_needs_name_and_valid_inn(branch, admin):
    with pytest.raises(ValidationError) as exc:
        actions.do_create_subscriber(
            SubscriberData(branch_id=branch.pk, kind="organization", organization_name="", inn="123"), acting_user=admin
        )
    assert {k: [e.code for e in v] for k, v in exc.value.error_dict.items()} == {
        "organization_name": ["required"],
        "inn": ["inn_invalid"],
    }
    org = actions.do_create_subscriber(
        SubscriberData(
            branch_id=branch.pk,
            kind="organization",
            organization_name="ООО «Ромашка»",
            inn="7707083893",
            kpp="773601001",
            last_name="ignored",
        ),
        acting_user=admin,
    )
    assert (org.display_name, org.last_name, org.inn) == ("ООО «Ромашка»", "", "7707083893")


def test_roles_without_the_permission_cannot_create(make_staff, branch):
    cashier = make_staff(Role.CASHIER)
    with pytest.raises(PermissionDenied):
        actions.do_create_subscriber(
            SubscriberData(branch_id=branch.pk, last_name="А", first_name="Б"), acting_user=cashier
        )
    assert Subscriber.objects.count() == 0


def test_branch_limited_operator_cannot_create_in_another_branch(make_staff, branch, other_branch):
    limited = make_staff(Role.OPERATOR, branches=[branch])
    with pytest.raises(PermissionDenied):
        actions.do_create_subscriber(
            SubscriberData(branch_id=other_branch.pk, last_name="А", first_name="Б"), acting_user=limited
        )
    assert Subscriber.objects.count() == 0


def test_update_audits_only_what_changed(make_subscriber, operator):
    subscriber = make_subscriber()
    actions.do_update_subscriber(
        subscriber, changes={"last_name": "Петров", "consent_marketing": True}, acting_user=operator, reason="typo"
    )
    subscriber.refresh_from_db()
    assert subscriber.display_name == "Петров Иван Петрович" and "петров" in subscriber.search_text
    event = AuditEvent.objects.get(action="subscriber.updated")
    assert event.before == {"last_name": "Иванов", "consent_marketing": False}
    assert event.after == {"last_name": "Петров", "consent_marketing": True}
    assert event.reason == "typo" and event.actor == operator
    assert subscriber.consent_marketing_at is not None


def test_update_with_invalid_values_changes_nothing(make_subscriber, operator):
    subscriber = make_subscriber()
    with pytest.raises(ValidationError):
        actions.do_update_subscriber(subscriber, changes={"last_name": "", "inn": "1"}, acting_user=operator)
    subscriber.refresh_from_db()
    assert subscriber.last_name == "Иванов"
    assert not AuditEvent.objects.filter(action="subscriber.updated").exists()


def test_close_needs_a_reason_terminates_contracts_and_can_be_undone(make_subscriber, operator):
    subscriber = make_subscriber()
    with pytest.raises(ValidationError):
        actions.do_close_subscriber(subscriber, reason=" ", acting_user=operator)
    actions.do_close_subscriber(subscriber, reason="moved away", acting_user=operator)
    subscriber.refresh_from_db()
    assert subscriber.status == SubscriberStatus.CLOSED and subscriber.closed_at is not None
    assert list(subscriber.contracts.values_list("status", flat=True)) == ["terminated"]
    with pytest.raises(ValidationError):
        actions.do_close_subscriber(subscriber, reason="again", acting_user=operator)
    actions.do_reopen_subscriber(subscriber, reason="came back", acting_user=operator)
    subscriber.refresh_from_db()
    assert subscriber.status == SubscriberStatus.ACTIVE and subscriber.closed_at is None


def test_contacts_are_normalised_deduplicated_and_searchable(make_subscriber, operator):
    subscriber = make_subscriber()
    actions.do_add_contact(subscriber, kind="email", value=" Ivan@Example.RU ", acting_user=operator)
    with pytest.raises(ValidationError):
        actions.do_add_contact(subscriber, kind="phone", value="8 916 123 45 67", acting_user=operator)
    subscriber.refresh_from_db()
    assert "ivan@example.ru" in subscriber.search_text


def test_equipment_is_at_one_subscriber_at_a_time(make_subscriber, operator):
    first = make_subscriber()
    second = make_subscriber(phone="+79161234568")
    ont = actions.do_register_equipment(
        kind="ont",
        vendor="ZTE",
        model="F660",
        serial_number="ZTEG1",
        mac_address="00-1E-73-AA-BB-CC",
        acting_user=operator,
    )
    assert ont.mac_address == "00:1e:73:aa:bb:cc"
    assignment = actions.do_assign_equipment(ont, first, ownership="rent", acting_user=operator)
    first.refresh_from_db()
    assert "001e73aabbcc" in first.search_text and "zteg1" in first.search_text
    with pytest.raises(ValidationError):
        actions.do_assign_equipment(ont, second, ownership="rent", acting_user=operator)
    actions.do_return_equipment(assignment, acting_user=operator)
    actions.do_assign_equipment(ont, second, ownership="sold", acting_user=operator)
    first.refresh_from_db()
    assert "001e73aabbcc" not in first.search_text
    assert EquipmentAssignment.objects.filter(equipment=ont).count() == 2
    with pytest.raises(ValidationError) as exc:
        actions.do_register_equipment(kind="ont", vendor="ZTE", mac_address="00:1e:73:aa:bb:cc", acting_user=operator)
    assert exc.value.error_dict["mac_address"][0].code == "mac_taken"
    assert Equipment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_get_distinct_account_numbers(branch, admin):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    barrier = threading.Barrier(4)
    numbers, errors = [], []

    def create(i):
        barrier.wait()
        try:
            numbers.append(
                actions.do_create_subscriber(
                    SubscriberData(branch_id=branch.pk, last_name=f"Параллельный{i}", first_name="Тест"),
                    acting_user=admin,
                ).account_number
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(numbers)) == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_the_same_account_number_make_one(branch, admin):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    barrier = threading.Barrier(3)
    outcomes = []

    def create(i):
        barrier.wait()
        try:
            actions.do_create_subscriber(
                SubscriberData(
                    branch_id=branch.pk,
                    last_name=f"Гонка{i}",
                    first_name="Тест",
                    account_number="700000003",
                    contract_number=f"C-{i}",
                ),
                acting_user=admin,
            )
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(exc.error_dict["account_number"][0].code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["account_number_taken", "account_number_taken", "ok"]
    assert Subscriber.objects.filter(account_number="700000003").count() == 1
    assert Contract.objects.count() == 1


def test_failed_install_of_a_new_device_leaves_no_orphan_device(make_subscriber, operator):
    subscriber = make_subscriber()
    with pytest.raises(ValidationError):
        actions.do_install_equipment(
            subscriber, serial_or_mac="NEW-1", ownership="stolen", kind="ont", vendor="ZTE", acting_user=operator
        )
    assert Equipment.objects.count() == 0
    assignment = actions.do_install_equipment(
        subscriber,
        serial_or_mac="aa-bb-cc-dd-ee-01",
        ownership="rent",
        kind="router",
        vendor="Keenetic",
        acting_user=operator,
    )
    assert assignment.equipment.mac_address == "aa:bb:cc:dd:ee:01" and assignment.equipment.serial_number is None
    # Installing the same device again is found by its MAC, not registered twice.
    with pytest.raises(ValidationError):
        actions.do_install_equipment(subscriber, serial_or_mac="AABBCCDDEE01", ownership="rent", acting_user=operator)
    assert Equipment.objects.count() == 1
