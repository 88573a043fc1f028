"""Attacks on the stock's devices meeting the subscribers' equipment records: equal serials of two vendors, a
subscriber's own device with the stock's serial or MAC, a device installed in one branch and later in another, the
card's own actions moving a stock device to someone else."""

import pytest
from django.core.exceptions import ValidationError

from abonent.fieldwork import actions
from abonent.fieldwork.models import Job
from abonent.staff.permissions import Role
from abonent.subscribers import actions as subscribers
from abonent.subscribers.models import Equipment, EquipmentAssignment


@pytest.fixture
def huawei(storekeeper):
    return actions.do_create_device_model(vendor="Huawei", name="HG8245", kind="ont", acting_user=storekeeper)


@pytest.fixture
def second_customer(make_subscriber):
    return make_subscriber(last_name="Петров", phone="+79160000001")


def _install(book, storekeeper, installer, device, *, start, ticket=None, who=None):
    job = book(start, f"{int(start[:2]) + 1:02d}:00", ticket=ticket, who=who)
    actions.do_issue_device(device, installer=who or installer, acting_user=storekeeper, job=job)
    return job, lambda: actions.do_close_job(job, acting_user=who or installer, serials=[device.serial_number])


def test_equal_serials_of_two_vendors_the_second_refused_by_serial_not_a_500(
    book, receive, storekeeper, installer, huawei, second_customer, open_ticket
):
    (zte,) = receive("SN0001")
    (hw,) = receive("SN0001", model=huawei)
    _job, close = _install(book, storekeeper, installer, zte, start="09:00")
    close()
    actions.do_close_job(book("10:00", "11:00"), acting_user=installer, removed_serials=["SN0001"])  # back on shelf

    job, close = _install(
        book, storekeeper, installer, hw, start="12:00", ticket=open_ticket(subscriber=second_customer)
    )
    with pytest.raises(ValidationError) as caught:
        close()

    assert caught.value.error_dict["serials"][0].code == "equipment_conflict"
    job.refresh_from_db()
    hw.refresh_from_db()
    assert (job.status, hw.state, hw.equipment_id) == ("scheduled", "issued", None)
    assert not second_customer.equipment_assignments.exists()


@pytest.mark.parametrize("own", [{"serial_or_mac": "SN0002"}, {"serial_or_mac": "OWN1", "mac_address": "001122334455"}])
def test_a_subscribers_own_device_with_the_stocks_serial_or_mac_is_not_taken_over(
    book, ont, storekeeper, installer, admin, customer, second_customer, own
):
    subscribers.do_install_equipment(
        second_customer, ownership="subscriber", acting_user=admin, kind="router", vendor="TP-Link", **own
    )
    subscribers.do_return_equipment(second_customer.equipment_assignments.get(), acting_user=admin)  # on no card
    (device,) = actions.do_receive_devices(ont, text="SN0002 00:11:22:33:44:55", acting_user=storekeeper)

    job, close = _install(book, storekeeper, installer, device, start="09:00")
    with pytest.raises(ValidationError) as caught:
        close()

    assert caught.value.error_dict["serials"][0].code == "equipment_conflict"
    assert Equipment.objects.get().vendor == "TP-Link"
    assert not customer.equipment_assignments.exists()
    assert Job.objects.get(pk=job.pk).status == "scheduled"


def test_a_record_registered_for_the_same_device_before_the_stock_is_taken_over(
    book, receive, storekeeper, installer, admin, customer, second_customer
):
    subscribers.do_install_equipment(
        second_customer, serial_or_mac="ZTEG0009", ownership="rent", acting_user=admin, kind="ont", vendor="zte"
    )
    subscribers.do_return_equipment(second_customer.equipment_assignments.get(), acting_user=admin)
    (device,) = receive("ZTEG0009")

    _job, close = _install(book, storekeeper, installer, device, start="09:00")
    close()

    device.refresh_from_db()
    assert device.equipment_id == Equipment.objects.get().pk
    assert customer.equipment_assignments.get(returned_at__isnull=True).equipment_id == device.equipment_id


def test_a_device_installed_in_one_branch_goes_later_to_another(
    book, receive, storekeeper, installer, make_staff, make_subscriber, other_branch, open_ticket
):
    (device,) = receive("ZTEG0001")
    _job, close = _install(book, storekeeper, installer, device, start="09:00")
    close()
    actions.do_close_job(book("10:00", "11:00"), acting_user=installer, removed_serials=["ZTEG0001"])
    klin_installer = make_staff(Role.ENGINEER, username="klin", branches=[other_branch])
    klin_customer = make_subscriber(last_name="Клинов", phone="+79160000002", branch_obj=other_branch)

    _job, close = _install(
        book,
        storekeeper,
        installer,
        device,
        start="12:00",
        who=klin_installer,
        ticket=open_ticket(subscriber=klin_customer),
    )
    close()

    device.refresh_from_db()
    assert (device.state, device.subscriber_id) == ("installed", klin_customer.pk)
    assert klin_customer.equipment_assignments.get(returned_at__isnull=True).equipment_id == device.equipment_id


def test_taking_a_device_away_ends_only_this_subscribers_assignment(
    book, receive, storekeeper, installer, admin, customer, second_customer
):
    (device,) = receive("ZTEG0001")
    _job, close = _install(book, storekeeper, installer, device, start="09:00")
    close()
    # The card's own actions meanwhile: returned at the customer, installed at the neighbour by serial.
    subscribers.do_return_equipment(customer.equipment_assignments.get(), acting_user=admin)
    subscribers.do_install_equipment(second_customer, serial_or_mac="ZTEG0001", ownership="rent", acting_user=admin)

    actions.do_close_job(book("10:00", "11:00"), acting_user=installer, removed_serials=["ZTEG0001"])

    assert EquipmentAssignment.objects.get(subscriber=second_customer).returned_at is None
    device.refresh_from_db()
    assert device.state == "returned"


def test_a_serial_of_twelve_hex_digits_stays_a_serial_on_the_card(book, ont, storekeeper, installer, customer):
    (device,) = actions.do_receive_devices(ont, text="A1B2C3D4E5F6 00:11:22:33:44:55", acting_user=storekeeper)

    _job, close = _install(book, storekeeper, installer, device, start="09:00")
    close()

    record = customer.equipment_assignments.get().equipment
    assert (record.serial_number, record.mac_address) == ("A1B2C3D4E5F6", "00:11:22:33:44:55")
