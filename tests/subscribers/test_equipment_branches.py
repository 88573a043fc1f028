"""Installing equipment under a branch limit (issue 11): a user limited to Клин neither sees nor takes a device
of Тверь, and learns nothing of the Тверь subscriber who holds a shared device."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role
from abonent.subscribers import actions
from abonent.subscribers.models import Equipment, EquipmentAssignment, EquipmentStatus


@pytest.fixture
def klin_engineer(make_staff, other_branch):
    return make_staff(Role.ENGINEER, branches=[other_branch])


@pytest.fixture
def klin_subscriber(make_subscriber, other_branch):
    return make_subscriber(last_name="Клинова", first_name="Анна", phone="+79161230000", branch_obj=other_branch)


@pytest.fixture
def tver_ont(branch, admin):
    """A device of the Тверь branch, in stock."""
    return actions.do_register_equipment(
        kind="ont", vendor="ZTE", model="F660", serial_number="ZTEG-TVER-1", branch_id=branch.pk, acting_user=admin
    )


def _state():
    return (
        list(Equipment.objects.order_by("pk").values_list("pk", "status", "branch_id")),
        list(EquipmentAssignment.objects.order_by("pk").values_list("equipment_id", "subscriber_id", "returned_at")),
        AuditEvent.objects.filter(action__startswith="equipment.").count(),
    )


def test_the_card_does_not_take_a_device_of_another_branch(klin_engineer, klin_subscriber, tver_ont):
    client = Client()
    client.force_login(klin_engineer)
    before = _state()

    response = client.post(
        f"/staff/subscribers/{klin_subscriber.pk}/equipment/",
        {"serial_or_mac": "ZTEG-TVER-1", "ownership": "rent"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 422
    assert "This device belongs to a branch you do not have access to." in response.content.decode()
    assert _state() == before
    assert tver_ont.status == EquipmentStatus.IN_STOCK


def test_a_device_of_another_branch_installed_there_is_neither_taken_nor_shown(
    klin_engineer, klin_subscriber, make_subscriber, tver_ont, admin
):
    holder = make_subscriber()  # Тверь
    actions.do_assign_equipment(tver_ont, holder, ownership="rent", acting_user=admin)
    before = _state()

    with pytest.raises(ValidationError) as exc:
        actions.do_install_equipment(
            klin_subscriber, serial_or_mac="ZTEG-TVER-1", ownership="rent", acting_user=klin_engineer
        )

    assert exc.value.error_dict["serial_or_mac"][0].code == "equipment_other_branch"
    assert holder.account_number not in str(exc.value)
    assert _state() == before


def test_assigning_a_device_of_another_branch_directly_is_denied(klin_engineer, klin_subscriber, tver_ont):
    before = _state()

    with pytest.raises(PermissionDenied):
        actions.do_assign_equipment(tver_ont, klin_subscriber, ownership="rent", acting_user=klin_engineer)

    assert _state() == before


def test_a_shared_device_at_another_branchs_subscriber_does_not_name_the_subscriber(
    klin_engineer, klin_subscriber, make_subscriber, admin
):
    shared = actions.do_register_equipment(kind="ont", vendor="ZTE", serial_number="ZTEG-SHARED", acting_user=admin)
    holder = make_subscriber()  # Тверь
    actions.do_assign_equipment(shared, holder, ownership="rent", acting_user=admin)
    before = _state()

    with pytest.raises(ValidationError) as exc:
        actions.do_install_equipment(
            klin_subscriber, serial_or_mac="ZTEG-SHARED", ownership="rent", acting_user=klin_engineer
        )

    assert exc.value.code == "equipment_assigned"
    assert exc.value.messages == ["This device is installed at a subscriber of another branch."]
    assert holder.account_number not in str(exc.value)
    assert _state() == before


def test_a_branch_limited_engineer_installs_their_branchs_and_shared_devices(
    klin_engineer, klin_subscriber, other_branch, admin
):
    own = actions.do_register_equipment(
        kind="ont", vendor="ZTE", serial_number="ZTEG-KLIN-1", branch_id=other_branch.pk, acting_user=admin
    )
    shared = actions.do_register_equipment(kind="router", vendor="TP-Link", serial_number="TPL-1", acting_user=admin)

    for serial in ("ZTEG-KLIN-1", "TPL-1"):
        actions.do_install_equipment(klin_subscriber, serial_or_mac=serial, ownership="rent", acting_user=klin_engineer)

    assert sorted(klin_subscriber.equipment_assignments.values_list("equipment_id", flat=True)) == sorted(
        [own.pk, shared.pk]
    )


def test_a_branch_limited_engineer_cannot_register_a_device_into_another_branch(klin_engineer, branch):
    with pytest.raises(PermissionDenied):
        actions.do_register_equipment(
            kind="ont", vendor="ZTE", serial_number="ZTEG-X", branch_id=branch.pk, acting_user=klin_engineer
        )

    assert not Equipment.objects.exists()


def test_an_engineer_without_a_branch_limit_still_installs_any_branchs_device(make_staff, klin_subscriber, tver_ont):
    engineer = make_staff(Role.ENGINEER)

    assignment = actions.do_install_equipment(
        klin_subscriber, serial_or_mac="ZTEG-TVER-1", ownership="rent", acting_user=engineer
    )

    assert (assignment.equipment_id, assignment.subscriber_id) == (tver_ont.pk, klin_subscriber.pk)
