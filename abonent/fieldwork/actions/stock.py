"""The warehouse's writes: device models, receiving by pasted serials, issuing to an installer, installing at a
subscriber (through the subscribers app's equipment actions), returns and write-offs.

Every change of a device's state goes through ``_move``: the transition must be in ``TRANSITIONS`` (anything else is
``illegal_move``, nothing written), and it writes one ``StockMove`` and one audit row in the same transaction.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers import actions as subscribers
from abonent.subscribers.models import Equipment, EquipmentKind, EquipmentOwnership, Subscriber
from abonent.subscribers.validators import normalize_mac

from ..models import DeviceKind, DeviceModel, DeviceState, Job, StockDevice, StockMove
from .common import check_any, check_installer, deadline

S = DeviceState
# Where a device may go from each state. "Returned" is back on the shelf: it may go out again or be written off.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.RECEIVED: frozenset({S.ISSUED, S.WRITTEN_OFF}),
    S.ISSUED: frozenset({S.INSTALLED, S.RETURNED}),
    S.INSTALLED: frozenset({S.RETURNED}),
    S.RETURNED: frozenset({S.ISSUED, S.WRITTEN_OFF}),
    S.WRITTEN_OFF: frozenset(),
}
# One paste is at most this many lines: a warehouse receives boxes, not the whole catalogue at once.
MAX_RECEIVE_LINES = 2000
SERIAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{1,99}$")
# The kinds of the card's equipment record (subscribers.EquipmentKind) for ours; it has no "switch".
EQUIPMENT_KIND = {DeviceKind.SWITCH: EquipmentKind.OTHER}


def _lock(device: StockDevice) -> StockDevice:
    deadline()
    return StockDevice.objects.select_for_update().select_related("device_model").get(pk=device.pk)


def _move(device: StockDevice, to_state: str, *, acting_user, comment: str = "", **fields) -> StockMove:
    """Move the locked ``device`` to ``to_state`` with ``fields`` (holder, subscriber, job, equipment) set, and log
    it. The caller has checked the actor's permission; this checks the transition."""
    if to_state not in TRANSITIONS[device.state]:
        raise ValidationError(
            _("A device that is “%(from)s” cannot become “%(to)s”.")
            % {"from": DeviceState(device.state).label, "to": DeviceState(to_state).label},
            code="illegal_move",
        )
    from_state = device.state
    device.state = to_state
    device.holder = fields.get("holder")
    device.subscriber = fields.get("subscriber")
    if "job" in fields:
        device.job = fields["job"]
    if fields.get("equipment") is not None:
        device.equipment = fields["equipment"]
    device.updated_at = clock.now()
    device.save(update_fields=["state", "holder", "subscriber", "job", "equipment", "updated_at"])
    move = StockMove.objects.create(
        device=device,
        from_state=from_state,
        to_state=to_state,
        installer=fields.get("holder") or fields.get("installer"),
        subscriber=fields.get("subscriber") or fields.get("from_subscriber"),
        job=fields.get("job"),
        comment=comment[:255],
        actor=acting_user,
        created_at=device.updated_at,
    )
    audit.record(
        actor=acting_user,
        action="stock.moved",
        obj=device,
        subscriber_id=move.subscriber_id,
        before={"state": from_state},
        after={"state": to_state, "installer": move.installer_id, "job": move.job_id},
        reason=comment,
    )
    return move


@transaction.atomic
def do_create_device_model(*, vendor: str, name: str, kind: str, acting_user) -> DeviceModel:
    check_perm(acting_user, Perm.STOCK_MANAGE)
    vendor, name = (vendor or "").strip(), (name or "").strip()
    errors = {}
    if not vendor:
        errors["vendor"] = ValidationError(_("Enter the vendor."), code="required")
    if not name:
        errors["name"] = ValidationError(_("Enter the model."), code="required")
    if kind not in DeviceKind.values:
        errors["kind"] = ValidationError(_("Choose the type."), code="kind_invalid")
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            model = DeviceModel.objects.create(vendor=vendor, name=name, kind=kind)
    except IntegrityError:
        raise ValidationError(
            {"name": ValidationError(_("This model is already in the list."), code="model_taken")}
        ) from None
    audit.record(actor=acting_user, action="stock.model_created", obj=model, after=audit.snapshot(model))
    return model


def parse_serials(text: str) -> tuple[list[tuple[int, str, str | None]], list[str]]:
    """The pasted lines as ``(line number, serial, MAC or None)`` and the problems found, each naming its line.

    A line is a serial, optionally followed by a MAC (separated by spaces, a tab, a comma or a semicolon); empty
    lines are skipped. The same serial or MAC twice in the paste is a problem on its second line."""
    lines = (text or "").splitlines()
    problems: list[str] = []
    if len(lines) > MAX_RECEIVE_LINES:
        return [], [_("At most %(count)s lines at once.") % {"count": MAX_RECEIVE_LINES}]
    rows: list[tuple[int, str, str | None]] = []
    seen_serials: dict[str, int] = {}
    seen_macs: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        parts = [p for p in re.split(r"[\s,;]+", line.strip()) if p]
        if not parts:
            continue
        serial, mac = parts[0], None
        if len(parts) > 2 or not SERIAL_RE.match(serial):
            problems.append(
                _("Line %(line)s: “%(text)s” is not a serial number.") % {"line": number, "text": line[:60]}
            )
            continue
        if len(parts) == 2:
            try:
                mac = normalize_mac(parts[1])
            except ValidationError:
                problems.append(
                    _("Line %(line)s: “%(text)s” is not a MAC address.") % {"line": number, "text": parts[1][:30]}
                )
                continue
        if serial in seen_serials:
            problems.append(
                _("Line %(line)s: serial %(serial)s is already on line %(first)s.")
                % {"line": number, "serial": serial, "first": seen_serials[serial]}
            )
            continue
        if mac and mac in seen_macs:
            problems.append(
                _("Line %(line)s: MAC %(mac)s is already on line %(first)s.")
                % {"line": number, "mac": mac, "first": seen_macs[mac]}
            )
            continue
        seen_serials[serial] = number
        if mac:
            seen_macs[mac] = number
        rows.append((number, serial, mac))
    return rows, problems


@transaction.atomic
def do_receive_devices(device_model: DeviceModel, *, text: str, acting_user, comment: str = "") -> list[StockDevice]:
    """Receive the pasted serials of ``device_model`` into stock: all of them or none. Every problem (a bad line, a
    serial twice in the paste or already received, a MAC already known) is reported at once, naming its line."""
    check_perm(acting_user, Perm.STOCK_MANAGE)
    rows, problems = parse_serials(text)
    if not rows and not problems:
        problems.append(_("Paste at least one serial number."))
    serials = [serial for _n, serial, _m in rows]
    macs = [mac for _n, _s, mac in rows if mac]
    taken = set(
        StockDevice.objects.filter(device_model=device_model, serial_number__in=serials).values_list(
            "serial_number", flat=True
        )
    )
    taken_macs = set(StockDevice.objects.filter(mac_address__in=macs).values_list("mac_address", flat=True))
    for number, serial, mac in rows:
        if serial in taken:
            problems.append(
                _("Line %(line)s: serial %(serial)s is already received.") % {"line": number, "serial": serial}
            )
        elif mac in taken_macs:
            problems.append(_("Line %(line)s: MAC %(mac)s is already received.") % {"line": number, "mac": mac})
    if problems:
        raise ValidationError({"serials": [ValidationError(p, code="receive_invalid") for p in problems]})
    now = clock.now()
    devices = [
        StockDevice(device_model=device_model, serial_number=serial, mac_address=mac, received_at=now, updated_at=now)
        for _n, serial, mac in rows
    ]
    try:
        with transaction.atomic():
            # A concurrent paste of the same serials loses here on the unique constraint, whole.
            StockDevice.objects.bulk_create(devices)
    except IntegrityError:
        raise ValidationError(
            {
                "serials": ValidationError(
                    _("Some of these devices were received meanwhile; try again."), code="receive_race"
                )
            }
        ) from None
    if not all(d.pk for d in devices):  # SQLite before 3.35 returns no ids from a bulk insert
        by_serial = dict(
            StockDevice.objects.filter(device_model=device_model, serial_number__in=serials).values_list(
                "serial_number", "pk"
            )
        )
        for device in devices:
            device.pk = by_serial[device.serial_number]
    StockMove.objects.bulk_create(
        [
            StockMove(
                device=d, from_state="", to_state=S.RECEIVED, actor=acting_user, comment=comment[:255], created_at=now
            )
            for d in devices
        ]
    )
    audit.record(
        actor=acting_user,
        action="stock.received",
        obj=device_model,
        after={"count": len(devices), "serials": serials[:50]},
        reason=comment,
    )
    return devices


@transaction.atomic
def do_issue_device(device: StockDevice, *, installer, acting_user, job: Job | None = None) -> StockDevice:
    """Hand ``device`` to ``installer`` (for ``job``, whose installer it must be). The warehouse or a dispatcher."""
    check_any(acting_user, Perm.STOCK_MANAGE, Perm.JOB_MANAGE)
    if job is not None and (job.installer_id != installer.pk or not job.is_open):
        raise ValidationError(
            {
                "installer": ValidationError(
                    _("Issue a job's devices to its installer while it is open."), code="job_mismatch"
                )
            }
        )
    check_installer(installer, job.branch_id if job else None)
    device = _lock(device)
    _move(device, S.ISSUED, acting_user=acting_user, holder=installer, job=job)
    return device


@transaction.atomic
def do_return_device(device: StockDevice, *, acting_user, comment: str = "") -> StockDevice:
    """Back to stock: from the installer who held it, or taken from the subscriber it was installed at (the card's
    equipment record is returned through the subscribers app)."""
    check_perm(acting_user, Perm.STOCK_MANAGE)
    device = _lock(device)
    if device.state == S.INSTALLED:
        _return_installed(device, acting_user=acting_user, comment=comment)
    else:
        _move(device, S.RETURNED, acting_user=acting_user, comment=comment, installer=device.holder)
    return device


def _return_installed(device: StockDevice, *, acting_user, comment: str, job: Job | None = None) -> None:
    """Take the locked, installed ``device`` back from its subscriber: the card's assignment is returned through the
    subscribers app, the device goes to "returned" (on the shelf, to be checked, re-issued or written off)."""
    # Only the assignment at this subscriber: the card's equipment actions may since have returned the record there
    # and installed it at someone else, whose assignment is not the stock's to end.
    assignment = (
        device.equipment.assignments.filter(returned_at__isnull=True, subscriber_id=device.subscriber_id).first()
        if device.equipment
        else None
    )
    if assignment is not None:
        subscribers.do_return_equipment(assignment, acting_user=acting_user, comment=comment)
    fields = {"from_subscriber": device.subscriber}
    if job is not None:
        fields["job"] = job
    _move(device, S.RETURNED, acting_user=acting_user, comment=comment, **fields)


def take_back_device(device: StockDevice, subscriber: Subscriber, *, installer, job: Job) -> StockDevice:
    """An installer takes ``device`` away from ``subscriber`` on a visit (a repair replacing it). Called inside the
    close of the job, which has checked the installer; the device must be installed at that subscriber."""
    device = _lock(device)
    if device.state != S.INSTALLED or device.subscriber_id != subscriber.pk:
        raise ValidationError(
            {
                "removed": ValidationError(
                    _("Device %(serial)s is not installed at this subscriber.") % {"serial": device.serial_number},
                    code="not_installed_here",
                )
            }
        )
    _return_installed(device, acting_user=installer, comment=str(job), job=job)
    return device


@transaction.atomic
def do_write_off_device(device: StockDevice, *, reason: str, acting_user) -> StockDevice:
    check_perm(acting_user, Perm.STOCK_MANAGE)
    if not (reason or "").strip():
        raise ValidationError({"reason": ValidationError(_("Say why the device is written off."), code="required")})
    device = _lock(device)
    _move(device, S.WRITTEN_OFF, acting_user=acting_user, comment=reason.strip())
    return device


def _card_record(device: StockDevice, *, acting_user) -> Equipment:
    """The card's equipment record for ``device`` on its first installation: registered as the shared stock's (no
    branch: the device may later go to a subscriber of any branch), or a record already made for the same device
    (same serial, same vendor, no other MAC, not another stock device's) taken over. Any other record with its serial
    or MAC is another device — two vendors' equal serials, a subscriber's own router — and is refused by serial,
    before anything is written at the subscriber."""
    model = device.device_model
    found = {
        e.pk: e
        for e in Equipment.objects.filter(
            Q(serial_number=device.serial_number) | Q(mac_address=device.mac_address)
            if device.mac_address
            else Q(serial_number=device.serial_number)
        )[:3]
    }
    if not found:
        return subscribers.do_register_equipment(
            kind=EQUIPMENT_KIND.get(model.kind, model.kind),
            vendor=model.vendor,
            model=model.name,
            serial_number=device.serial_number,
            mac_address=device.mac_address or "",
            branch_id=None,
            acting_user=acting_user,
        )
    (record, *others) = found.values()
    if (
        not others
        and record.serial_number == device.serial_number
        and record.mac_address in (None, device.mac_address)
        and record.vendor.casefold() == model.vendor.casefold()
        and not StockDevice.objects.filter(equipment=record).exists()
    ):
        return record
    raise ValidationError(
        {
            "serials": ValidationError(
                _(
                    "Device %(serial)s: the subscribers' equipment already has another device with this serial "
                    "number or MAC address."
                )
                % {"serial": device.serial_number},
                code="equipment_conflict",
            )
        }
    )


def install_device(device: StockDevice, subscriber: Subscriber, *, installer, job: Job | None) -> StockDevice:
    """Install ``device``, issued to ``installer``, at ``subscriber``: the card's equipment record is made (or the
    device's earlier one reused) and assigned through the subscribers app, as rented. Called inside the close of a
    job, which has checked the installer."""
    device = _lock(device)
    if device.state == S.ISSUED and device.holder_id != installer.pk:
        raise ValidationError(
            {
                "serials": ValidationError(
                    _("Device %(serial)s is not issued to you.") % {"serial": device.serial_number}, code="not_issued"
                )
            }
        )
    if device.state != S.ISSUED:
        # The same refusal as any illegal move, before anything is written at the subscriber.
        _move(device, S.INSTALLED, acting_user=installer, subscriber=subscriber)
    equipment = device.equipment or _card_record(device, acting_user=installer)
    assignment = subscribers.do_assign_equipment(
        equipment, subscriber, ownership=EquipmentOwnership.RENT, acting_user=installer
    )
    _move(
        device,
        S.INSTALLED,
        acting_user=installer,
        subscriber=subscriber,
        equipment=assignment.equipment,
        job=job or device.job,
    )
    return device
