"""Reads of field work: stock counts, devices, jobs as a user may see them, an installer's day."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from abonent.helpdesk.models import Ticket
from abonent.staff.models import StaffUser
from abonent.staff.permissions import ROLE_PERMISSIONS, Perm, Role, has_perm, scope_to_branches

from .models import DeviceModel, DeviceState, Job, JobStatus, StockDevice


def stock_counts() -> list[dict]:
    """Per device model, how many devices are in each state: one aggregate query (``Count`` with a filter per
    state), models without devices included with zeros."""
    aggregates = {
        state: Count("devices_of_model", filter=Q(devices_of_model__state=state)) for state in DeviceState.values
    }
    rows = DeviceModel.objects.annotate(**aggregates).order_by("vendor", "name", "id")
    return [
        {
            "model": row,
            "counts": [getattr(row, state) for state in DeviceState.values],
            "total": sum(getattr(row, s) for s in DeviceState.values),
        }
        for row in rows
    ]


def devices(*, state: str = "", model_id: int | None = None, query: str = ""):
    qs = StockDevice.objects.select_related("device_model", "holder", "subscriber")
    if state:
        qs = qs.filter(state=state)
    if model_id:
        qs = qs.filter(device_model_id=model_id)
    if query:
        qs = qs.filter(Q(serial_number__icontains=query) | Q(mac_address__icontains=query.lower()))
    return qs.order_by("device_model__vendor", "device_model__name", "serial_number", "id")


def issued_to(installer):
    return StockDevice.objects.filter(state=DeviceState.ISSUED, holder=installer).select_related("device_model")


def installed_at(subscriber_ids: list[int]) -> dict[int, list[StockDevice]]:
    """The stock's devices installed at each of ``subscriber_ids`` (one query), for a repair that replaces one."""
    found: dict[int, list[StockDevice]] = {}
    if not subscriber_ids:
        return found
    for device in (
        StockDevice.objects.filter(state=DeviceState.INSTALLED, subscriber_id__in=set(subscriber_ids))
        .select_related("device_model")
        .order_by("serial_number")
    ):
        found.setdefault(device.subscriber_id, []).append(device)
    return found


def visible_jobs(user):
    """The jobs ``user`` may see: a dispatcher's (``job.manage``) within their branches; an installer's own."""
    qs = Job.objects.select_related("installer", "subscriber", "ticket", "branch")
    if not has_perm(user, Perm.JOB_MANAGE):
        qs = qs.filter(installer=user)
    return scope_to_branches(qs, user)


def get_job(user, pk: int) -> Job:
    """A job ``user`` may see, or 404 (another branch's job or another installer's is not found, not forbidden)."""
    return get_object_or_404(visible_jobs(user), pk=pk)


def jobs_on(user, day: dt.date, *, installer_id: int | None = None):
    qs = visible_jobs(user).filter(day=day)
    if installer_id:
        qs = qs.filter(installer_id=installer_id)
    return qs.order_by("starts_at", "installer__username", "id")


def my_day(installer, day: dt.date):
    """The installer's open and done jobs of ``day`` in slot order, with their checklists and issued devices."""
    return (
        Job.objects.filter(installer=installer, day=day)
        .exclude(status=JobStatus.CANCELLED)
        .select_related("subscriber", "ticket")
        .prefetch_related("checklist")
        .order_by("starts_at", "id")
    )


def installer_roles() -> list[str]:
    """The roles whose people work jobs: those granted ``job.work``, but the administrator's (who holds every
    permission and is not sent up a ladder)."""
    return [role for role, perms in ROLE_PERMISSIONS.items() if Perm.JOB_WORK in perms and role != Role.ADMIN]


def installers():
    return StaffUser.objects.filter(is_active=True, is_service_account=False, role__in=installer_roles()).order_by(
        "full_name", "username"
    )


def available_device(serial: str) -> StockDevice | None:
    """The device on the shelf (received or returned) with ``serial``; ``None`` when there is none or several
    models share the serial (the warehouse page tells them apart)."""
    found = list(
        StockDevice.objects.filter(
            serial_number=serial.strip(), state__in=[DeviceState.RECEIVED, DeviceState.RETURNED]
        )[:2]
    )
    return found[0] if len(found) == 1 else None


def ticket_by_number(user, number: int):
    """A request by its number as ``user`` may see it (another branch's: not found), for booking a job."""
    ticket = (
        scope_to_branches(Ticket.objects.select_related("subscriber"), user, "subscriber__branch")
        .filter(number=number)
        .first()
    )
    if ticket is None:
        raise ValidationError({"ticket": ValidationError(_("No request with this number."), code="ticket_not_found")})
    return ticket
