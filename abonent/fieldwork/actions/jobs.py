"""Technician jobs: made from a request (or for a prospect), booked on an installer's day without overlap, cancelled.

Double booking: every booking of an installer for a day first locks that day's ``InstallerDay`` row (made on first
use; its unique constraint settles two first uses at once), then looks for an overlapping open job. Two dispatchers
booking the same installer at once therefore check one after the other, and the second sees the first's job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.catalog.models import Plan
from abonent.core import audit, clock
from abonent.core.models import Branch
from abonent.helpdesk.models import Ticket, TicketCategory
from abonent.staff.permissions import Perm, check_branch, check_perm
from abonent.subscribers.actions import clean_profile
from abonent.subscribers.models import AddressKind, ContactKind, Subscriber, SubscriberKind
from abonent.subscribers.validators import normalize_phone

from ..models import (
    ChecklistTemplateItem,
    InstallerDay,
    Job,
    JobChecklistItem,
    JobKind,
    JobStatus,
)
from .common import check_installer, deadline

# The request categories a visit answers, and the kind of job each becomes.
JOB_KIND_OF_CATEGORY = {
    TicketCategory.CONNECTION_REQUEST: JobKind.CONNECTION,
    TicketCategory.NO_CONNECTION: JobKind.REPAIR,
    TicketCategory.EQUIPMENT: JobKind.REPAIR,
}
# How far ahead a job may be booked: a slot years away is a typo.
MAX_DAYS_AHEAD = 366


@dataclass
class Slot:
    day: dt.date
    starts_at: dt.time
    ends_at: dt.time


@dataclass
class ProspectData:
    """Someone who is not a subscriber yet and wants to be connected: whom to call, where, on which plan."""

    branch_id: int
    last_name: str
    phone: str
    city: str
    house: str
    first_name: str = ""
    middle_name: str = ""
    street: str = ""
    apartment: str = ""
    plan_id: int | None = None


def _check_slot(slot: Slot) -> None:
    errors = {}
    if slot.ends_at <= slot.starts_at:
        errors["ends_at"] = ValidationError(_("The slot must end after it starts."), code="slot_order")
    today = clock.today()
    if slot.day < today:
        errors["day"] = ValidationError(_("The date is in the past."), code="day_past")
    elif slot.day > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        errors["day"] = ValidationError(_("The date is too far ahead."), code="day_too_far")
    if errors:
        raise ValidationError(errors)


def book(installer, slot: Slot, *, exclude_job_id: int | None = None) -> None:
    """Lock the installer's day and refuse a slot overlapping one of their open jobs (``installer_busy``)."""
    deadline()
    try:
        with transaction.atomic():
            InstallerDay.objects.get_or_create(installer=installer, day=slot.day)
    except IntegrityError:
        pass  # made by a booking running at the same moment; locked below
    InstallerDay.objects.select_for_update().filter(installer=installer, day=slot.day).values_list("pk").get()
    clash = (
        Job.objects.filter(
            installer=installer,
            day=slot.day,
            status=JobStatus.SCHEDULED,
            starts_at__lt=slot.ends_at,
            ends_at__gt=slot.starts_at,
        )
        .exclude(pk=exclude_job_id)
        .order_by("starts_at")
        .first()
    )
    if clash is not None:
        raise ValidationError(
            {
                "starts_at": ValidationError(
                    _("The installer is busy from %(start)s to %(end)s (job %(job)s).")
                    % {
                        "start": clash.starts_at.strftime("%H:%M"),
                        "end": clash.ends_at.strftime("%H:%M"),
                        "job": clash.pk,
                    },
                    code="installer_busy",
                )
            }
        )


def _contact_phone(subscriber: Subscriber) -> str:
    phone = subscriber.contacts.filter(kind=ContactKind.PHONE).order_by("-is_primary", "id").first()
    return phone.value if phone else ""


def _service_address(subscriber: Subscriber) -> str:
    address = subscriber.addresses.filter(kind=AddressKind.SERVICE).order_by("id").first()
    return address.as_text() if address else ""


def _add_checklist(job: Job) -> None:
    items = ChecklistTemplateItem.objects.filter(kind=job.kind).order_by("position", "id")
    JobChecklistItem.objects.bulk_create(
        [JobChecklistItem(job=job, position=n, text=item.text) for n, item in enumerate(items, start=1)]
    )


def _clean_prospect(data: ProspectData) -> dict:
    errors = {}
    values = {
        "last_name": data.last_name.strip(),
        "first_name": data.first_name.strip(),
        "middle_name": data.middle_name.strip(),
        "city": data.city.strip(),
        "street": data.street.strip(),
        "house": data.house.strip(),
        "apartment": data.apartment.strip(),
    }
    for name, value in values.items():
        limit = Job._meta.get_field(name).max_length
        if len(value) > limit:
            # The form has the same limits; a caller of the action past them gets a field error, not a DataError.
            errors[name] = ValidationError(_("At most %(limit)s characters.") % {"limit": limit}, code="too_long")
    for name, message in (
        ("last_name", _("Enter the last name.")),
        ("city", _("Enter the city.")),
        ("house", _("Enter the house.")),
    ):
        if not values[name]:
            errors[name] = ValidationError(message, code="required")
    try:
        values["contact_phone"] = normalize_phone(data.phone)
    except ValidationError as exc:
        errors["phone"] = exc
    # The names as the subscriber will be created with them when the job is done: refused now, not at the door.
    try:
        clean_profile(
            {"kind": SubscriberKind.INDIVIDUAL, **{k: values[k] for k in ("last_name", "first_name", "middle_name")}}
        )
    except ValidationError as exc:
        for name, field_errors in exc.error_dict.items():
            errors.setdefault(name, field_errors)
    if errors:
        raise ValidationError(errors)
    return values


@transaction.atomic
def do_create_job(
    *,
    installer,
    slot: Slot,
    acting_user,
    ticket: Ticket | None = None,
    prospect: ProspectData | None = None,
    note: str = "",
) -> Job:
    """A job for ``ticket`` (a connection, no-connection or equipment request of a subscriber) or for ``prospect``
    (a connection of someone not yet a subscriber), on ``installer``'s ``slot``. Its checklist is copied from the
    template of its kind."""
    check_perm(acting_user, Perm.JOB_MANAGE)
    if (ticket is None) == (prospect is None):
        raise ValidationError(_("A job is made from a request or for a prospect."), code="job_source")
    fields: dict = {}
    if ticket is not None:
        ticket = Ticket.objects.select_related("subscriber").get(pk=ticket.pk)
        check_branch(acting_user, ticket.subscriber.branch_id)
        kind = JOB_KIND_OF_CATEGORY.get(ticket.category)
        if kind is None:
            raise ValidationError(
                {"ticket": ValidationError(_("This kind of request needs no visit."), code="ticket_category")}
            )
        if not ticket.is_open:
            raise ValidationError({"ticket": ValidationError(_("The request is finished."), code="ticket_finished")})
        subscriber = ticket.subscriber
        fields.update(
            kind=kind,
            ticket=ticket,
            subscriber=subscriber,
            branch_id=subscriber.branch_id,
            # A connection request names where to connect; a repair goes to the service address.
            address=(ticket.address or _service_address(subscriber))[:300],
            contact_phone=_contact_phone(subscriber),
        )
    else:
        check_branch(acting_user, prospect.branch_id)
        values = _clean_prospect(prospect)
        if not Branch.objects.filter(pk=prospect.branch_id, is_active=True).exists():
            raise ValidationError(
                {"branch_id": ValidationError(_("Choose an existing branch."), code="branch_invalid")}
            )
        if prospect.plan_id is not None and not Plan.objects.filter(pk=prospect.plan_id, is_archived=False).exists():
            # Checked here, not only by the form: a missing plan would fail the foreign key at commit (a 500), an
            # archived one is not offered to new sign-ups.
            raise ValidationError({"plan_id": ValidationError(_("Choose an offered plan."), code="plan_invalid")})
        address = ", ".join(p for p in (values["city"], values["street"], values["house"]) if p)
        if values["apartment"]:
            address += ", " + _("apt. %(apartment)s") % {"apartment": values["apartment"]}
        fields.update(
            values,
            kind=JobKind.CONNECTION,
            branch_id=prospect.branch_id,
            # Every part at its longest joins to more than the column holds; the parts are kept whole for the
            # subscriber, this is the line shown on the installer's day.
            address=address[:300],
            plan_id=prospect.plan_id,
        )
    if not fields["address"]:
        raise ValidationError({"address": ValidationError(_("The request has no address."), code="address_missing")})
    _check_slot(slot)
    check_installer(installer, fields["branch_id"])
    book(installer, slot)
    now = clock.now()
    try:
        with transaction.atomic():
            job = Job.objects.create(
                **fields,
                installer=installer,
                day=slot.day,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                note=note.strip(),
                created_by=acting_user,
                created_at=now,
            )
    except IntegrityError:
        raise ValidationError(
            {"ticket": ValidationError(_("This request already has an open job."), code="ticket_has_job")}
        ) from None
    _add_checklist(job)
    audit.record(
        actor=acting_user,
        action="job.created",
        obj=job,
        subscriber_id=job.subscriber_id,
        after=audit.snapshot(job, ["kind", "ticket_id", "installer_id", "day", "starts_at", "ends_at", "address"]),
    )
    return job


def _lock(job: Job) -> Job:
    deadline()
    return Job.objects.select_for_update().get(pk=job.pk)


@transaction.atomic
def do_reschedule_job(job: Job, *, installer, slot: Slot, acting_user) -> Job:
    check_perm(acting_user, Perm.JOB_MANAGE)
    check_branch(acting_user, job.branch_id)
    job = _lock(job)
    if not job.is_open:
        raise ValidationError(_("The job is finished."), code="job_finished")
    _check_slot(slot)
    check_installer(installer, job.branch_id)
    book(installer, slot, exclude_job_id=job.pk)
    before = audit.snapshot(job, ["installer_id", "day", "starts_at", "ends_at"])
    job.installer, job.day, job.starts_at, job.ends_at = installer, slot.day, slot.starts_at, slot.ends_at
    job.save(update_fields=["installer", "day", "starts_at", "ends_at"])
    audit.record(
        actor=acting_user,
        action="job.rescheduled",
        obj=job,
        subscriber_id=job.subscriber_id,
        before=before,
        after=audit.snapshot(job, ["installer_id", "day", "starts_at", "ends_at"]),
    )
    return job


@transaction.atomic
def do_cancel_job(job: Job, *, reason: str, acting_user) -> Job:
    """Cancel an open job; its devices stay with the installer until they are returned to stock."""
    check_perm(acting_user, Perm.JOB_MANAGE)
    check_branch(acting_user, job.branch_id)
    if not (reason or "").strip():
        raise ValidationError({"reason": ValidationError(_("Say why the job is cancelled."), code="required")})
    job = _lock(job)
    if job.status == JobStatus.CANCELLED:
        return job
    if not job.is_open:
        raise ValidationError(_("The job is finished."), code="job_finished")
    job.status, job.closed_at, job.result = JobStatus.CANCELLED, clock.now(), reason.strip()
    job.save(update_fields=["status", "closed_at", "result"])
    audit.record(
        actor=acting_user, action="job.cancelled", obj=job, subscriber_id=job.subscriber_id, reason=reason.strip()
    )
    return job


@transaction.atomic
def do_set_checklist_template(kind: str, *, text: str, acting_user) -> list[ChecklistTemplateItem]:
    """Replace the checklist new jobs of ``kind`` start with: one item a line (jobs already made keep theirs)."""
    check_perm(acting_user, Perm.JOB_MANAGE)
    if kind not in JobKind.values:
        raise ValidationError({"kind": ValidationError(_("Choose the kind of job."), code="kind_invalid")})
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) > 50 or any(len(line) > 200 for line in lines):
        raise ValidationError(
            {"text": ValidationError(_("At most 50 items of at most 200 characters."), code="checklist_too_long")}
        )
    before = list(ChecklistTemplateItem.objects.filter(kind=kind).values_list("text", flat=True))
    ChecklistTemplateItem.objects.filter(kind=kind).delete()
    items = ChecklistTemplateItem.objects.bulk_create(
        [ChecklistTemplateItem(kind=kind, position=n, text=line) for n, line in enumerate(lines, start=1)]
    )
    # The template is a set of rows, not one object: the row logged is its first item, or (emptied) an unsaved
    # stand-in whose kind the audit viewer shows; ``before`` and ``after`` carry the whole lists.
    audit.record(
        actor=acting_user,
        action="job.checklist_template",
        obj=items[0] if items else ChecklistTemplateItem(pk=0, kind=kind, position=0, text=""),
        before={"kind": kind, "items": before},
        after={"kind": kind, "items": lines},
    )
    return items
