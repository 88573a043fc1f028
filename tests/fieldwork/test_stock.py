"""The warehouse: receiving pasted serials (all or nothing), the state machine of a device, counts per model."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from abonent.core.models import AuditEvent
from abonent.fieldwork import actions, selectors
from abonent.fieldwork.models import DeviceState, StockDevice, StockMove
from abonent.staff.permissions import Role


def test_receiving_a_paste_stocks_every_serial_with_its_mac_and_a_move_each(receive, ont, storekeeper):
    devices = actions.do_receive_devices(
        ont, text="ZTEG0001\n\n  ZTEG0002  AA-BB-CC-DD-EE-01\nZTEG0003;aabb.ccdd.ee02\n", acting_user=storekeeper
    )

    assert [(d.serial_number, d.mac_address, d.state) for d in devices] == [
        ("ZTEG0001", None, "received"),
        ("ZTEG0002", "aa:bb:cc:dd:ee:01", "received"),
        ("ZTEG0003", "aa:bb:cc:dd:ee:02", "received"),
    ]
    assert sorted(StockMove.objects.values_list("device__serial_number", "from_state", "to_state")) == [
        ("ZTEG0001", "", "received"),
        ("ZTEG0002", "", "received"),
        ("ZTEG0003", "", "received"),
    ]
    assert AuditEvent.objects.get(action="stock.received").after["count"] == 3


def test_a_paste_with_duplicates_and_bad_lines_is_refused_whole_naming_each_line(receive, ont, storekeeper):
    receive("ZTEG0009")
    paste = "ZTEG0001\nZTEG0002\nZTEG0001\nbad serial with spaces\nZTEG0009\nZTEG0003 not-a-mac\n"

    with pytest.raises(ValidationError) as caught:
        actions.do_receive_devices(ont, text=paste, acting_user=storekeeper)

    assert caught.value.message_dict["serials"] == [
        "Line 3: serial ZTEG0001 is already on line 1.",
        "Line 4: “bad serial with spaces” is not a serial number.",
        "Line 6: “not-a-mac” is not a MAC address.",
        "Line 5: serial ZTEG0009 is already received.",
    ]
    assert list(StockDevice.objects.values_list("serial_number", flat=True)) == ["ZTEG0009"]
    assert StockMove.objects.count() == 1


def test_the_same_serial_may_be_stocked_under_another_model(receive, storekeeper):
    router = actions.do_create_device_model(vendor="TP-Link", name="Archer C6", kind="router", acting_user=storekeeper)
    receive("SN1")
    receive("SN1", model=router)
    assert StockDevice.objects.filter(serial_number="SN1").count() == 2


def test_an_empty_or_absurd_paste_is_refused(ont, storekeeper):
    with pytest.raises(ValidationError, match="Paste at least one serial number"):
        actions.do_receive_devices(ont, text=" \n\n", acting_user=storekeeper)
    with pytest.raises(ValidationError, match="At most 2000 lines"):
        actions.do_receive_devices(ont, text="\n".join(f"S{n:05}" for n in range(2001)), acting_user=storekeeper)
    assert not StockDevice.objects.exists()


def test_a_cashier_cannot_receive(make_staff, ont):
    with pytest.raises(PermissionDenied):
        actions.do_receive_devices(ont, text="S1", acting_user=make_staff(Role.CASHIER))
    assert not StockDevice.objects.exists()


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "installed"),  # straight from the shelf to a subscriber, skipping the installer
        ([], "returned"),
        (["write_off"], "issued"),  # written off is final
        (["write_off"], "returned"),
        (["issue"], "written_off"),  # an installer's device is returned before it is written off
        (["issue"], "issued"),
    ],
)
def test_illegal_moves_are_refused_and_change_nothing(receive, storekeeper, installer, customer, path, illegal):
    (device,) = receive("ZTEG0001")
    for step in path:
        if step == "issue":
            actions.do_issue_device(device, installer=installer, acting_user=storekeeper)
        else:
            actions.do_write_off_device(device, reason="broken", acting_user=storekeeper)
    device.refresh_from_db()
    before = (device.state, device.holder_id, StockMove.objects.count())

    with pytest.raises(ValidationError) as caught:
        if illegal == "installed":
            actions.install_device(device, customer, installer=installer, job=None)
        elif illegal == "returned":
            actions.do_return_device(device, acting_user=storekeeper)
        elif illegal == "issued":
            actions.do_issue_device(device, installer=installer, acting_user=storekeeper)
        else:
            actions.do_write_off_device(device, reason="lost", acting_user=storekeeper)

    assert caught.value.code == "illegal_move"
    device.refresh_from_db()
    assert (device.state, device.holder_id, StockMove.objects.count()) == before
    assert not customer.equipment_assignments.exists()


def test_issue_return_reissue_and_write_off_are_each_a_move(receive, storekeeper, installer, other_installer):
    (device,) = receive("ZTEG0001")
    actions.do_issue_device(device, installer=installer, acting_user=storekeeper)
    actions.do_return_device(device, acting_user=storekeeper, comment="not needed")
    actions.do_issue_device(device, installer=other_installer, acting_user=storekeeper)
    actions.do_return_device(device, acting_user=storekeeper)
    actions.do_write_off_device(device, reason="dropped", acting_user=storekeeper)

    moves = list(device.moves.order_by("id").values_list("from_state", "to_state", "installer__username"))
    assert moves == [
        ("", "received", None),
        ("received", "issued", "petrov"),
        ("issued", "returned", "petrov"),
        ("returned", "issued", "sidorov"),
        ("issued", "returned", "sidorov"),
        ("returned", "written_off", None),
    ]
    device.refresh_from_db()
    assert (device.state, device.holder_id) == ("written_off", None)


def test_a_device_is_issued_only_to_an_installer(receive, storekeeper, make_staff):
    (device,) = receive("ZTEG0001")
    with pytest.raises(ValidationError) as caught:
        actions.do_issue_device(device, installer=make_staff(Role.CASHIER), acting_user=storekeeper)
    assert caught.value.message_dict == {"installer": ["Choose an active installer."]}
    device.refresh_from_db()
    assert device.state == DeviceState.RECEIVED


def test_counts_per_model_and_state_in_one_query(receive, storekeeper, installer):
    router = actions.do_create_device_model(vendor="TP-Link", name="Archer C6", kind="router", acting_user=storekeeper)
    actions.do_create_device_model(vendor="Eltex", name="MES2324", kind="switch", acting_user=storekeeper)
    a, b, _c = receive("A1", "A2", "A3")
    receive("R1", model=router)
    actions.do_issue_device(a, installer=installer, acting_user=storekeeper)
    actions.do_write_off_device(b, reason="dead on arrival", acting_user=storekeeper)

    with CaptureQueriesContext(connection) as queries:
        counts = selectors.stock_counts()

    assert len(queries) == 1
    # Columns in DeviceState order: received, issued, installed, returned, written off.
    assert [(str(row["model"]), row["counts"], row["total"]) for row in counts] == [
        ("Eltex MES2324", [0, 0, 0, 0, 0], 0),
        ("TP-Link Archer C6", [1, 0, 0, 0, 0], 1),
        ("ZTE F660", [1, 1, 0, 0, 1], 3),
    ]
