"""The telephony pages of the console under ``/staff/telephony/``: the screen-pop stream, a recording, the operator
KPIs and the operators' extensions."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import mimetypes
from pathlib import Path

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import connections
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core import clock
from abonent.core.forms import apply_action_errors
from abonent.staff.models import StaffUser
from abonent.staff.permissions import Perm, has_perm, require_perm

from . import actions, pops, selectors
from .hub import hub
from .models import Extension

HEARTBEAT_SECONDS = 15.0


def _open_stream(user, language: str):
    try:
        extension = selectors.extension_of(user) if has_perm(user, Perm.CALL_VIEW) else None
        return extension, pops.Viewer.of(user, language) if extension else None
    finally:
        # This request's thread holds a connection (the session, the user, the lines above) until the response
        # ends, which for a stream is when the operator leaves: give it back to the pool now, or a few dozen open
        # consoles would hold every connection of the process.
        connections.close_all()


def _still_entitled(session_key: str | None, user_id: int, extension: str, language: str):
    """The stream's viewer afresh (their branches and permissions of now) while the session still signs in its
    user, active, with ``call.view`` and the same extension; else None. A stream lives for hours: without this a
    signed-out, deactivated or moved operator's open tab kept receiving the pops (subscribers' names and balances)
    of the extension."""
    from importlib import import_module

    from django.contrib import auth

    class Probe:  # what auth.get_user reads of a request
        pass

    try:
        if not session_key:
            return None
        probe = Probe()
        probe.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = auth.get_user(probe)  # AnonymousUser: session gone or expired, user inactive, password changed
        if (
            getattr(user, "pk", None) != user_id
            or not has_perm(user, Perm.CALL_VIEW)
            or selectors.extension_of(user) != extension
        ):
            return None
        return pops.Viewer.of(user, language)
    finally:
        connections.close_all()  # this executor thread's connection goes back at once (see _open_stream)


@login_required
async def pop_events(request):
    """``text/event-stream`` of the pops of the signed-in operator's extension: ``event: pop`` with the pop as JSON
    (pops.for_viewer), a comment every ``HEARTBEAT_SECONDS`` so proxies keep the connection. No extension (or no
    ``call.view``): 204, which tells EventSource not to reconnect."""
    user = await request.auser()
    extension, _viewer = await sync_to_async(_open_stream)(user, get_language())
    if not extension:
        return HttpResponse(status=204)
    queue = await hub().subscribe(extension)
    if queue is None:
        return HttpResponse(status=429)  # EventSource does not retry a non-200: the tab shows no pops
    session_key, language = request.session.session_key, get_language()
    # The request's own thread, as _open_stream: the connection it takes goes back to the pool at the end of each
    # check (connections.close_all), so a stream holds none between pops.
    entitled = sync_to_async(_still_entitled)

    async def stream():
        try:
            yield "retry: 3000\n: connected\n\n"
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    if await entitled(session_key, user.pk, extension, language) is None:
                        return  # the browser reconnects, is refused (login, 204) and stops
                    yield ": ping\n\n"
                    continue
                current = await entitled(session_key, user.pk, extension, language)
                if current is None:
                    return
                shown = pops.for_viewer(payload, current)  # today's branches and permissions
                yield f"event: pop\ndata: {json.dumps(shown, ensure_ascii=False, separators=(',', ':'))}\n\n"
        finally:
            hub().unsubscribe(extension, queue)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@require_perm(Perm.RECORDING_LISTEN)
def recording(request, pk: int):
    """The call's recording, to the staff who may see one of its subscribers (selectors.visible_call). The name
    stored was checked when written (actions.recording_path); it is resolved again here and must stay inside
    ABONENT_RECORDINGS_DIR, so neither ``..`` nor a symlink leads out of it."""
    call = selectors.visible_call(request.user, pk)
    if not call.recording_file:
        raise Http404
    root = Path(settings.ABONENT_RECORDINGS_DIR).resolve()
    path = (root / call.recording_file).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Http404
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not content_type.startswith("audio/"):
        content_type = "application/octet-stream"
    size = path.stat().st_size
    wanted = _byte_range(request.headers.get("Range", ""), size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    handle = path.open("rb")
    if wanted is None:
        response = FileResponse(handle, content_type=content_type, filename=path.name)
    else:
        # The player seeks with Range (a long call): send only the part asked for.
        first, last = wanted
        handle.seek(first)
        response = StreamingHttpResponse(_read_part(handle, last - first + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    return response


def _byte_range(header: str, size: int):
    """``Range: bytes=a-b`` / ``a-`` / ``-n`` as ``(first, last)``; None: no range or one we do not read (several,
    garbage: the whole file, RFC 9110 14.2); False: a range past the end (416)."""
    unit, _eq, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    start, dash, end = spec.strip().partition("-")
    if not dash or not (start.isdigit() or end.isdigit()) or (start and not start.isdigit()):
        return None
    if end and not end.isdigit():
        return None
    if not start:  # the last n bytes
        n = int(end)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    first = int(start)
    if end and int(end) < first:
        return None  # not a range at all: ignored
    last = min(int(end), size - 1) if end else size - 1
    if first >= size:
        return False
    return first, last


def _read_part(handle, length: int, chunk: int = 64 * 1024):
    try:
        while length > 0:
            data = handle.read(min(chunk, length))
            if not data:
                return
            length -= len(data)
            yield data
    finally:
        handle.close()


@require_POST
@require_perm(Perm.CALL_VIEW)
@require_perm(Perm.TICKET_MANAGE)
def link_ticket(request, pk: int):
    """Link a call to the request it was about (the card's Calls panel). Another branch's call or request: 404."""
    from abonent.helpdesk.selectors import as_number, get_ticket

    call = selectors.visible_call(request.user, pk)
    ticket_pk = as_number(request.POST.get("ticket", ""))
    if ticket_pk is None:
        raise Http404
    ticket = get_ticket(request.user, ticket_pk)
    if call.subscribers.exists() and not call.subscribers.filter(pk=ticket.subscriber_id).exists():
        raise Http404  # a request of someone the call is not of (a forged form): as if it did not exist
    actions.do_link_call_ticket(call, ticket, acting_user=request.user)
    messages.success(request, _("The call is linked to request %(number)s.") % {"number": ticket.number})
    return redirect("subscribers:card", ticket.subscriber_id)


class PeriodForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


# A period is clamped to these years: the day after 9999-12-31 does not exist (a 500), and no call is older.
EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2999, 12, 31)


def _period(form: PeriodForm) -> tuple[dt.date, dt.date]:
    today = clock.today()
    data = form.cleaned_data if form.is_valid() else {}
    start = min(max(data.get("start") or today.replace(day=1), EARLIEST), LATEST)
    end = min(max(data.get("end") or today, EARLIEST), LATEST)
    return (start, end) if start <= end else (end, start)


@require_perm(Perm.TELEPHONY_MANAGE)
def kpis(request):
    form = PeriodForm(request.GET or None)
    start, end = _period(form)
    tz = timezone.get_current_timezone()
    rows = selectors.operator_kpis(
        dt.datetime.combine(start, dt.time(), tz), dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz)
    )
    return render(request, "telephony/kpis.html", {"form": form, "rows": rows, "start": start, "end": end})


class ExtensionForm(forms.Form):
    user = forms.ModelChoiceField(
        label=gettext_lazy("Staff user"), queryset=StaffUser.objects.filter(is_active=True).order_by("username")
    )
    number = forms.CharField(label=gettext_lazy("Extension"), max_length=20, required=False)


@require_perm(Perm.TELEPHONY_MANAGE)
def extensions(request):
    form = ExtensionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_set_extension(form.cleaned_data["user"], form.cleaned_data["number"], acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("The extension is saved."))
            return redirect("telephony:extensions")
    rows = Extension.objects.select_related("user").order_by("number")
    calls = selectors.recent_calls(request.user, limit=50)
    return render(request, "telephony/extensions.html", {"form": form, "rows": rows, "calls": calls})
