"""Closing a job from the installer's phone: ticked checklist, a note, the serials installed — and, for a prospect's
connection, the subscriber created.

Exactly once: the close first claims the job with a conditional UPDATE (``scheduled`` → ``done``). A second submit
of the same form (a double tap, a phone retrying on a bad network) finds it done and returns it without doing
anything again; on PostgreSQL the second waits for the first's row lock and then sees ``done``. Everything the close
does is in one transaction, so a refused serial or an invalid prospect leaves the job open and nothing written.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.billing.actions import do_activate_subscription
from abonent.core import audit, clock
from abonent.helpdesk.actions import do_change_ticket_status
from abonent.helpdesk.models import TicketStatus
from abonent.staff.permissions import Perm, check_branch, has_perm
from abonent.subscribers import actions as subscribers
from abonent.subscribers.models import ConnectionEventKind

from ..models import DeviceState, Job, JobChecklistItem, JobKind, JobStatus, StockDevice, StockMove
from .common import check_any, deadline
from .stock import install_device, take_back_device

MAX_SERIALS = 20


def _devices_for(job: Job, serials: list[str]) -> list[StockDevice]:
    """The installer's issued devices named by ``serials``; any other serial is a field error naming it."""
    wanted = list(dict.fromkeys(s.strip() for s in serials if s.strip()))
    if len(wanted) > MAX_SERIALS:
        raise ValidationError({"serials": ValidationError(_("Too many serial numbers."), code="too_many")})
    held = {}
    for device in StockDevice.objects.filter(
        serial_number__in=wanted, state=DeviceState.ISSUED, holder_id=job.installer_id
    ).select_related("device_model"):
        held.setdefault(device.serial_number, []).append(device)
    missing = [s for s in wanted if len(held.get(s, [])) != 1]
    if missing:
        raise ValidationError(
            {
                "serials": ValidationError(
                    _("Not issued to the installer: %(serials)s.") % {"serials": ", ".join(missing)},
                    code="not_issued",
                )
            }
        )
    return [held[s][0] for s in wanted]


def _create_subscriber(job: Job, *, acting_user):
    """The prospect made a subscriber of the job's branch with its address and phone, on its plan if one was chosen.

    Created as the system (``acting_user=None``): the dispatcher who booked the connection (``job.manage``) decided
    it, the installer only reports it done and need not hold ``subscriber.create``; the job's audit row names them.
    """
    data = subscribers.SubscriberData(
        branch_id=job.branch_id,
        last_name=job.last_name,
        first_name=job.first_name,
        middle_name=job.middle_name,
        addresses=[subscribers.AddressData(city=job.city, street=job.street, house=job.house, apartment=job.apartment)],
        contacts=[subscribers.ContactData(kind="phone", value=job.contact_phone, is_primary=True)]
        if job.contact_phone
        else [],
    )
    subscriber = subscribers.do_create_subscriber(data, acting_user=None)
    if job.plan_id is not None:
        # The plan promised when the connection was booked, even if archived since: archiving closes a plan to new
        # sign-ups, and this one was signed up at the desk (the same promise vouchers keep for a sold card).
        do_activate_subscription(subscriber, plan=job.plan, acting_user=None, reason=str(job), allow_archived=True)
    return subscriber


def _check_repeat(job: Job, serials, removed_serials) -> None:
    """A close of a job already done changes nothing: fine for a repeated submit of the same form, but a close asking
    for a device the first did not install (or take away) is refused, not answered "done" with the device left
    issued."""
    moves = StockMove.objects.filter(job=job, to_state__in=[DeviceState.INSTALLED, DeviceState.RETURNED])
    done = {(state, serial) for serial, state in moves.values_list("device__serial_number", "to_state")}
    installed = {serial for state, serial in done if state == DeviceState.INSTALLED}
    returned = {serial for state, serial in done if state == DeviceState.RETURNED}
    asked = {s.strip() for s in serials if s.strip()} - installed
    asked |= {s.strip() for s in removed_serials if s.strip()} - returned
    if asked:
        raise ValidationError(
            _("The job is already closed; %(serials)s were not handled by it.") % {"serials": ", ".join(sorted(asked))},
            code="job_done",
        )


@transaction.atomic
def do_close_job(
    job: Job,
    *,
    acting_user,
    done_item_ids: list[int] = (),
    result: str = "",
    serials: list[str] = (),
    removed_serials: list[str] = (),
) -> Job:
    """Close ``job`` as done: tick ``done_item_ids``, take back ``removed_serials`` (devices of the stock installed at
    the subscriber, replaced on a repair: back to the shelf as "returned"), install ``serials`` (issued to its
    installer) at the subscriber — created first when the job connects a prospect — resolve its request, log the
    visit on the card.

    The job's installer closes it (``job.work``), or a dispatcher (``job.manage``) on their behalf."""
    check_any(acting_user, Perm.JOB_WORK, Perm.JOB_MANAGE)
    manager = has_perm(acting_user, Perm.JOB_MANAGE)
    if not manager and job.installer_id != acting_user.pk:
        raise ValidationError(_("This job is another installer's."), code="job_not_yours")
    check_branch(acting_user, job.branch_id)
    result = (result or "").strip()
    if len(result) > 4000:
        raise ValidationError({"result": ValidationError(_("The note is too long."), code="too_long")})
    deadline()
    now = clock.now()
    claim = Job.objects.filter(pk=job.pk, status=JobStatus.SCHEDULED)
    if not manager:
        # ``job`` may be stale: a job handed to another installer since it was read is not claimed by this one.
        claim = claim.filter(installer_id=acting_user.pk)
    claimed = claim.update(status=JobStatus.DONE, closed_at=now, result=result)
    job = Job.objects.select_related("installer", "plan", "ticket").get(pk=job.pk)
    if not claimed:
        if not manager and job.installer_id != acting_user.pk:
            raise ValidationError(_("This job is another installer's."), code="job_not_yours")
        if job.status == JobStatus.DONE:
            _check_repeat(job, serials, removed_serials)
            return job  # closed already: a repeated submit
        raise ValidationError(_("The job was cancelled."), code="job_cancelled")
    installer = job.installer
    devices = _devices_for(job, list(serials))
    created = False
    if job.subscriber_id is None:
        if job.kind != JobKind.CONNECTION:
            raise ValidationError(_("A repair needs a subscriber."), code="job_without_subscriber")
        job.subscriber = _create_subscriber(job, acting_user=acting_user)
        created = True
        Job.objects.filter(pk=job.pk).update(subscriber=job.subscriber)
    subscriber = job.subscriber
    removed = list(dict.fromkeys(r.strip() for r in removed_serials if r.strip()))[:MAX_SERIALS]
    taken_back = []
    for device in StockDevice.objects.filter(serial_number__in=removed, subscriber=subscriber).order_by("pk"):
        taken_back.append(take_back_device(device, subscriber, installer=installer, job=job).serial_number)
    missing = [r for r in removed if r not in taken_back]
    if missing:
        raise ValidationError(
            {
                "removed": ValidationError(
                    _("Not installed at this subscriber: %(serials)s.") % {"serials": ", ".join(missing)},
                    code="not_installed_here",
                )
            }
        )
    for device in devices:
        install_device(device, subscriber, installer=installer, job=job)
    # Only this job's items; anything else a form may send (another job's id, garbage) is ignored.
    # Matched as text: int() of what a form sends may fail ("²" is a digit to isdigit(), 5,000 digits too long).
    own = {str(pk): pk for pk in JobChecklistItem.objects.filter(job=job).values_list("pk", flat=True)}
    ids = sorted({own[str(i).strip()] for i in done_item_ids if str(i).strip() in own})
    JobChecklistItem.objects.filter(pk__in=ids).update(done=True)
    subscribers.do_add_connection_event(
        subscriber,
        kind=ConnectionEventKind.CONNECTED if job.kind == JobKind.CONNECTION else ConnectionEventKind.VISIT,
        happened_on=clock.today(),
        acting_user=acting_user if has_perm(acting_user, Perm.NOTE_ADD) else None,
        comment=(_("Job %(pk)s: %(result)s") % {"pk": job.pk, "result": result})[:255],
    )
    # The request is answered by the visit: resolved by the installer when they handle requests (engineers do);
    # otherwise it stays for the support desk, whose list shows it with the job done.
    if job.ticket is not None and job.ticket.is_open and has_perm(acting_user, Perm.TICKET_MANAGE):
        job.ticket = do_change_ticket_status(job.ticket, status=TicketStatus.RESOLVED, acting_user=acting_user)
    audit.record(
        actor=acting_user,
        action="job.closed",
        obj=job,
        subscriber_id=subscriber.pk,
        after={
            "result": result,
            "serials": [d.serial_number for d in devices],
            "removed": taken_back,
            "done_items": ids,
            "subscriber_created": created,
        },
    )
    return job
