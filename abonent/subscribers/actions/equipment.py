"""Equipment: registered, assigned to a subscriber, returned, installed."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, allowed_branch_ids, check_branch, check_perm

from ..models import (
    Equipment,
    EquipmentAssignment,
    EquipmentKind,
    EquipmentOwnership,
    EquipmentStatus,
    Subscriber,
)
from ..validators import (
    normalize_mac,
)
from .common import (
    _editable,
    _save_new,
    refresh_search_text,
)

# --- equipment ----------------------------------------------------------------------------------------


def _equipment_visible(user, equipment: Equipment) -> bool:
    """A branch-limited user handles their branches' devices and the shared stock (a device of no branch),
    never another branch's device, nor learns where it is installed."""
    ids = allowed_branch_ids(user)
    return ids is None or equipment.branch_id is None or equipment.branch_id in ids


@transaction.atomic
def do_register_equipment(
    *,
    kind: str,
    vendor: str,
    model: str = "",
    serial_number: str = "",
    mac_address: str = "",
    branch_id: int | None = None,
    comment: str = "",
    acting_user,
) -> Equipment:
    check_perm(acting_user, Perm.EQUIPMENT_MANAGE)
    if branch_id is not None:
        check_branch(acting_user, branch_id)
    errors = {}
    serial_number = (serial_number or "").strip() or None
    mac = None
    if mac_address and mac_address.strip():
        try:
            mac = normalize_mac(mac_address)
        except ValidationError as exc:
            errors["mac_address"] = exc.error_list
    if not (vendor or "").strip():
        errors["vendor"] = [ValidationError(_("Enter the vendor."), code="required")]
    if serial_number and Equipment.objects.filter(serial_number=serial_number).exists():
        errors["serial_number"] = [
            ValidationError(
                _("Equipment with serial number %(serial)s is already registered.") % {"serial": serial_number},
                code="serial_taken",
            )
        ]
    if mac and Equipment.objects.filter(mac_address=mac).exists():
        errors["mac_address"] = [
            ValidationError(
                _("Equipment with MAC address %(mac)s is already registered.") % {"mac": mac}, code="mac_taken"
            )
        ]
    if errors:
        raise ValidationError(errors)
    equipment = Equipment(
        kind=kind,
        vendor=vendor.strip(),
        model=(model or "").strip(),
        serial_number=serial_number,
        mac_address=mac,
        branch_id=branch_id,
        comment=comment,
    )
    _save_new(
        equipment, on_conflict=ValidationError(_("This equipment is already registered."), code="equipment_taken")
    )
    audit.record(
        actor=acting_user,
        action="equipment.registered",
        obj=equipment,
        after=audit.snapshot(equipment, ["kind", "vendor", "model", "serial_number", "mac_address"]),
    )
    return equipment


@transaction.atomic
def do_assign_equipment(
    equipment: Equipment, subscriber: Subscriber, *, ownership: str, acting_user, comment: str = ""
) -> EquipmentAssignment:
    subscriber = _editable(subscriber, acting_user, Perm.EQUIPMENT_MANAGE)
    equipment = Equipment.objects.select_for_update().get(pk=equipment.pk)
    if not _equipment_visible(acting_user, equipment):
        raise PermissionDenied(_("This device belongs to a branch you do not have access to."))
    if ownership not in EquipmentOwnership.values:
        raise ValidationError(
            {"ownership": ValidationError(_("Choose how the subscriber holds the device."), code="ownership_invalid")}
        )
    if equipment.status in (EquipmentStatus.FAULTY, EquipmentStatus.WRITTEN_OFF):
        raise ValidationError(_("Faulty or written-off equipment cannot be installed."), code="equipment_unusable")
    holder = equipment.assignments.filter(returned_at__isnull=True).select_related("subscriber").first()
    if holder:
        ids = allowed_branch_ids(acting_user)
        if ids is not None and holder.subscriber.branch_id not in ids:
            # A shared-stock device at another branch's subscriber: say that it is taken, not by whom.
            raise ValidationError(
                _("This device is installed at a subscriber of another branch."), code="equipment_assigned"
            )
        raise ValidationError(
            _("This device is installed at subscriber %(account)s; return it first.")
            % {"account": holder.subscriber.account_number},
            code="equipment_assigned",
        )
    assignment = EquipmentAssignment.objects.create(
        equipment=equipment, subscriber=subscriber, ownership=ownership, assigned_at=clock.now(), comment=comment
    )
    equipment.status = EquipmentStatus.INSTALLED
    equipment.save(update_fields=["status"])
    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="equipment.assigned",
        obj=equipment,
        subscriber_id=subscriber.pk,
        after={"subscriber": subscriber.account_number, "ownership": ownership},
    )
    return assignment


@transaction.atomic
def do_return_equipment(
    assignment: EquipmentAssignment, *, acting_user, faulty: bool = False, comment: str = ""
) -> EquipmentAssignment:
    subscriber = _editable(assignment.subscriber, acting_user, Perm.EQUIPMENT_MANAGE)
    assignment = EquipmentAssignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.returned_at is not None:
        raise ValidationError(_("This device has already been returned."), code="already_returned")
    assignment.returned_at = clock.now()
    if comment:
        assignment.comment = comment
    assignment.save(update_fields=["returned_at", "comment"])
    equipment = assignment.equipment
    equipment.status = EquipmentStatus.FAULTY if faulty else EquipmentStatus.IN_STOCK
    equipment.save(update_fields=["status"])
    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="equipment.returned",
        obj=equipment,
        subscriber_id=subscriber.pk,
        after={"subscriber": subscriber.account_number, "status": equipment.status},
        reason=comment,
    )
    return assignment


@transaction.atomic
def do_install_equipment(
    subscriber: Subscriber,
    *,
    serial_or_mac: str,
    ownership: str,
    acting_user,
    kind: str = "",
    vendor: str = "",
    model: str = "",
    mac_address: str = "",
) -> EquipmentAssignment:
    """Install a device found by serial number or MAC, registering it first when it is new — all or nothing.

    A branch-limited user finds only their branches' devices and the shared stock: another branch's device is
    refused (``equipment_other_branch``; serials and MACs are unique across branches, so it cannot be
    registered anew either), and nothing of it is shown or changed."""
    check_perm(acting_user, Perm.EQUIPMENT_MANAGE)
    check_branch(acting_user, subscriber.branch_id)
    key = (serial_or_mac or "").strip()
    try:
        mac = normalize_mac(key)
    except ValidationError:
        mac = None
    equipment = Equipment.objects.filter(
        Q(serial_number=key) | Q(mac_address=mac) if mac else Q(serial_number=key)
    ).first()
    if equipment is not None and not _equipment_visible(acting_user, equipment):
        raise ValidationError(
            {
                "serial_or_mac": ValidationError(
                    _("This device belongs to a branch you do not have access to."), code="equipment_other_branch"
                )
            }
        )
    if equipment is None:
        if not (vendor or "").strip():
            raise ValidationError(
                {
                    "vendor": ValidationError(
                        _(
                            "No device with this serial number or MAC is registered: "
                            "enter its type and vendor to register it."
                        ),
                        code="equipment_not_found",
                    )
                }
            )
        equipment = do_register_equipment(
            kind=kind or EquipmentKind.OTHER,
            vendor=vendor,
            model=model,
            serial_number="" if mac else key,
            mac_address=mac_address or (key if mac else ""),
            branch_id=subscriber.branch_id,
            acting_user=acting_user,
        )
    return do_assign_equipment(equipment, subscriber, ownership=ownership, acting_user=acting_user)
