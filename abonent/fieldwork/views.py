"""The field-work pages of the staff console, under ``/staff/fieldwork/``: the warehouse (counts, devices,
receiving, a device's moves), the dispatcher's jobs (book, issue devices, cancel) and the installer's day."""

from __future__ import annotations

import datetime as dt
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from abonent.core import clock
from abonent.core.forms import apply_action_errors
from abonent.helpdesk.selectors import get_ticket
from abonent.staff.permissions import Perm, allowed_branch_ids, has_perm, require_perm

from . import actions, selectors
from .actions.common import check_any
from .forms import (
    CancelForm,
    ChecklistForm,
    DeviceFilterForm,
    DeviceModelForm,
    IssueForm,
    JobForm,
    JobIssueForm,
    ReceiveForm,
    RescheduleForm,
    WriteOffForm,
)
from .models import ChecklistTemplateItem, DeviceState, JobKind, StockDevice

DEVICES_SHOWN = 200


def _hide_other_branches(user, rows, attr: str = "subscriber") -> None:
    """The stock is shared, but a branch-limited user must not learn another branch's subscriber from it: such a
    row's subscriber is hidden (``shown_subscriber`` is None; the state still says "installed")."""
    ids = allowed_branch_ids(user)
    for row in rows:
        subscriber = getattr(row, attr)
        row.shown_subscriber = subscriber if subscriber and (ids is None or subscriber.branch_id in ids) else None


def require_any(*perms: Perm):
    """A console view for holders of any of ``perms`` (a dispatcher or the installer)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            check_any(request.user, *perms)
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


# --- the warehouse ----------------------------------------------------------------------------------------------


def _stock_page(request, *, receive_form=None, model_form=None, status=200):
    filters = DeviceFilterForm(request.GET or None)
    data = filters.cleaned_data if filters.is_valid() else {}
    model = data.get("model")
    devices = selectors.devices(
        state=data.get("state") or "", model_id=model.pk if model else None, query=data.get("q") or ""
    )
    shown_devices = list(devices[: DEVICES_SHOWN + 1])
    _hide_other_branches(request.user, shown_devices)
    context = {
        "states": DeviceState.choices,
        "counts": selectors.stock_counts(),
        "filters": filters,
        "devices": shown_devices,
        "shown": DEVICES_SHOWN,
        "receive_form": receive_form or ReceiveForm(auto_id="receive-%s"),
        "model_form": model_form or DeviceModelForm(auto_id="model-%s"),
    }
    return render(request, "fieldwork/stock.html", context, status=status)


@require_perm(Perm.STOCK_MANAGE)
def stock(request):
    return _stock_page(request)


@require_POST
@require_perm(Perm.STOCK_MANAGE)
def model_create(request):
    form = DeviceModelForm(request.POST, auto_id="model-%s")
    if form.is_valid():
        try:
            model = actions.do_create_device_model(**form.cleaned_data, acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Model %(model)s added.") % {"model": model})
            return redirect("fieldwork:stock")
    return _stock_page(request, model_form=form, status=422)


@require_POST
@require_perm(Perm.STOCK_MANAGE)
def receive(request):
    form = ReceiveForm(request.POST, auto_id="receive-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            devices = actions.do_receive_devices(
                data["device_model"], text=data["serials"], comment=data["comment"], acting_user=request.user
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            count = len(devices)
            messages.success(
                request, ngettext("Received %(count)s device.", "Received %(count)s devices.", count) % {"count": count}
            )
            return redirect("fieldwork:stock")
    return _stock_page(request, receive_form=form, status=422)


def _device_page(request, device, *, issue_form=None, write_off_form=None, status=200):
    moves = list(device.moves.select_related("installer", "subscriber", "actor").order_by("-created_at", "-id"))
    _hide_other_branches(request.user, [device, *moves])
    context = {
        "device": device,
        "moves": moves,
        "issue_form": issue_form or IssueForm(auto_id="issue-%s"),
        "write_off_form": write_off_form or WriteOffForm(auto_id="writeoff-%s"),
        "can_issue": DeviceState.ISSUED in actions.TRANSITIONS[device.state],
        "can_return": DeviceState.RETURNED in actions.TRANSITIONS[device.state],
        "can_write_off": DeviceState.WRITTEN_OFF in actions.TRANSITIONS[device.state],
    }
    return render(request, "fieldwork/device.html", context, status=status)


@require_perm(Perm.STOCK_MANAGE)
def device(request, pk: int):
    return _device_page(request, get_object_or_404(StockDevice.objects.select_related("device_model", "holder"), pk=pk))


@require_POST
@require_perm(Perm.STOCK_MANAGE)
def device_move(request, pk: int, move: str):
    device = get_object_or_404(StockDevice.objects.select_related("device_model", "holder"), pk=pk)
    forms = {"issue": IssueForm, "write_off": WriteOffForm, "return": None}
    if move not in forms:
        raise Http404
    form = forms[move](request.POST, auto_id=f"{move}-%s") if forms[move] else None
    if form is None or form.is_valid():
        try:
            if move == "issue":
                actions.do_issue_device(device, installer=form.cleaned_data["installer"], acting_user=request.user)
            elif move == "write_off":
                actions.do_write_off_device(device, reason=form.cleaned_data["reason"], acting_user=request.user)
            else:
                actions.do_return_device(
                    device, comment=request.POST.get("comment", "")[:255], acting_user=request.user
                )
        except ValidationError as exc:
            if form is None or not hasattr(exc, "error_dict"):
                # An illegal move: the page no longer offers it; say why on the device's page.
                messages.error(request, " ".join(exc.messages))
                return redirect("fieldwork:device", pk=device.pk)
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("fieldwork:device", pk=device.pk)
    device.refresh_from_db()
    kwargs = {"issue_form": form} if move == "issue" else {"write_off_form": form}
    return _device_page(request, device, status=422, **kwargs)


# --- jobs ---------------------------------------------------------------------------------------------------------


def _day(request) -> dt.date:
    try:
        day = dt.date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        return clock.today()
    # The pages link the day before and after: the first and last dates Python knows have none.
    return day if dt.date.min < day < dt.date.max else clock.today()


@require_perm(Perm.JOB_MANAGE)
def jobs(request):
    day = _day(request)
    installer_id = request.GET.get("installer", "")
    installer_id = int(installer_id) if installer_id.isdigit() and len(installer_id) < 18 else None
    context = {
        "day": day,
        "previous": day - dt.timedelta(days=1),
        "next": day + dt.timedelta(days=1),
        "jobs": selectors.jobs_on(request.user, day, installer_id=installer_id),
        "installers": selectors.installers(),
        "installer_id": installer_id,
    }
    return render(request, "fieldwork/jobs.html", context)


@require_perm(Perm.JOB_MANAGE)
def job_create(request):
    ticket_pk = request.GET.get("ticket", "")
    initial = {"day": clock.today()}
    if ticket_pk.isdigit() and len(ticket_pk) < 18:
        initial["ticket"] = get_ticket(request.user, int(ticket_pk)).number
    form = JobForm(request.POST or None, initial=initial, auto_id="job-%s")
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                ticket = None
                prospect = None
                if data["ticket"]:
                    ticket = selectors.ticket_by_number(request.user, data["ticket"])
                else:
                    prospect = actions.ProspectData(
                        branch_id=data["branch"].pk,
                        **{
                            k: data[k]
                            for k in (
                                "last_name",
                                "first_name",
                                "middle_name",
                                "phone",
                                "city",
                                "street",
                                "house",
                                "apartment",
                            )
                        },
                        plan_id=data["plan"].pk if data["plan"] else None,
                    )
                job = actions.do_create_job(
                    installer=data["installer"],
                    slot=actions.Slot(day=data["day"], starts_at=data["starts_at"], ends_at=data["ends_at"]),
                    ticket=ticket,
                    prospect=prospect,
                    note=data["note"],
                    acting_user=request.user,
                )
            except ValidationError as exc:
                apply_action_errors(form, exc, {"branch_id": "branch", "plan_id": "plan"})
            else:
                messages.success(request, _("Job booked."))
                return redirect("fieldwork:job", pk=job.pk)
    return render(request, "fieldwork/job_form.html", {"form": form}, status=status)


def _job_page(request, job, *, issue_form=None, cancel_form=None, reschedule_form=None, status=200):
    slot = {"installer": job.installer_id, "day": job.day, "starts_at": job.starts_at, "ends_at": job.ends_at}
    context = {
        "reschedule_form": reschedule_form or RescheduleForm(initial=slot, auto_id="reschedule-%s"),
        "job": job,
        "checklist": job.checklist.all(),
        "devices": job.devices.select_related("device_model").order_by("serial_number"),
        "issue_form": issue_form or JobIssueForm(auto_id="jobissue-%s"),
        "cancel_form": cancel_form or CancelForm(auto_id="cancel-%s"),
        "can_manage": has_perm(request.user, Perm.JOB_MANAGE),
    }
    return render(request, "fieldwork/job.html", context, status=status)


@require_any(Perm.JOB_MANAGE, Perm.JOB_WORK)
def job(request, pk: int):
    return _job_page(request, selectors.get_job(request.user, pk))


@require_POST
@require_perm(Perm.JOB_MANAGE)
def job_issue(request, pk: int):
    job = selectors.get_job(request.user, pk)
    form = JobIssueForm(request.POST, auto_id="jobissue-%s")
    if form.is_valid():
        device = selectors.available_device(form.cleaned_data["serial"])
        if device is None:
            form.add_error("serial", _("No device with this serial number is on the shelf."))
        else:
            try:
                actions.do_issue_device(device, installer=job.installer, job=job, acting_user=request.user)
            except ValidationError as exc:
                apply_action_errors(form, exc, {"installer": "serial"})
            else:
                messages.success(request, _("Device %(serial)s issued.") % {"serial": device.serial_number})
                return redirect("fieldwork:job", pk=job.pk)
    return _job_page(request, job, issue_form=form, status=422)


@require_POST
@require_perm(Perm.JOB_MANAGE)
def job_reschedule(request, pk: int):
    job = selectors.get_job(request.user, pk)
    form = RescheduleForm(request.POST, auto_id="reschedule-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_reschedule_job(
                job,
                installer=data["installer"],
                slot=actions.Slot(day=data["day"], starts_at=data["starts_at"], ends_at=data["ends_at"]),
                acting_user=request.user,
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Job rescheduled."))
            return redirect("fieldwork:job", pk=job.pk)
    return _job_page(request, job, reschedule_form=form, status=422)


@require_POST
@require_perm(Perm.JOB_MANAGE)
def job_cancel(request, pk: int):
    job = selectors.get_job(request.user, pk)
    form = CancelForm(request.POST, auto_id="cancel-%s")
    if form.is_valid():
        try:
            actions.do_cancel_job(job, reason=form.cleaned_data["reason"], acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Job cancelled."))
            return redirect("fieldwork:job", pk=job.pk)
    return _job_page(request, job, cancel_form=form, status=422)


@require_POST
@require_any(Perm.JOB_WORK, Perm.JOB_MANAGE)
def job_close(request, pk: int):
    """The close form of the installer's day: ticked items, a note, the serials installed."""
    job = selectors.get_job(request.user, pk)
    try:
        actions.do_close_job(
            job,
            done_item_ids=request.POST.getlist("item"),
            result=request.POST.get("result", ""),
            serials=request.POST.getlist("serial")[:50],
            removed_serials=request.POST.getlist("removed")[:50],
            acting_user=request.user,
        )
    except ValidationError as exc:
        if job.installer_id != request.user.pk:
            # A dispatcher closing on the installer's behalf: their own day has not this job to show the reason on.
            messages.error(request, " ".join(exc.messages))
            return _job_page(request, job, status=422)
        return _my_day_page(request, job.day, failed={job.pk: exc.messages}, status=422)
    messages.success(request, _("Job done."))
    if job.installer_id != request.user.pk:
        return redirect("fieldwork:job", pk=job.pk)
    return redirect(f"{reverse('fieldwork:my_day')}?day={job.day.isoformat()}#job-{job.pk}")


def _my_day_page(request, day, *, failed=None, status=200):
    jobs = list(selectors.my_day(request.user, day))
    installed = selectors.installed_at([job.subscriber_id for job in jobs if job.subscriber_id and job.is_open])
    for job in jobs:
        job.installed_devices = installed.get(job.subscriber_id, [])
    context = {
        "day": day,
        "today": clock.today(),
        "previous": day - dt.timedelta(days=1),
        "next": day + dt.timedelta(days=1),
        "jobs": jobs,
        "devices": list(selectors.issued_to(request.user).order_by("serial_number")),
        "failed": failed or {},
    }
    return render(request, "fieldwork/my_day.html", context, status=status)


@require_perm(Perm.JOB_WORK)
def my_day(request):
    return _my_day_page(request, _day(request))


@require_perm(Perm.JOB_MANAGE)
def checklists(request):
    form = ChecklistForm(request.POST or None, auto_id="checklist-%s")
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                actions.do_set_checklist_template(
                    form.cleaned_data["kind"], text=form.cleaned_data["text"], acting_user=request.user
                )
            except ValidationError as exc:
                apply_action_errors(form, exc)
            else:
                messages.success(request, _("Checklist saved."))
                return redirect("fieldwork:checklists")
    templates = [
        (label, list(ChecklistTemplateItem.objects.filter(kind=value).values_list("text", flat=True)))
        for value, label in JobKind.choices
    ]
    return render(request, "fieldwork/checklists.html", {"form": form, "templates": templates}, status=status)
