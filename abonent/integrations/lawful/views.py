"""The lawful-interception pages (``/staff/lawful/``): the officer's own requests, a new request, the download.
Each needs ``Perm.LAWFUL_EXPORT``; a request or file of another officer is a 404, never a 403 (its existence is
not confirmed)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, require_perm

from . import actions
from .forms import RequestForm
from .models import ExportRequest, ExportStatus

PAGE = 100


@never_cache
@require_perm(Perm.LAWFUL_EXPORT)
def requests(request):
    rows = list(ExportRequest.objects.filter(requested_by=request.user)[:PAGE])
    pending = any(r.status in (ExportStatus.QUEUED, ExportStatus.RUNNING) for r in rows)
    context = {"rows": rows, "pending": pending, "file_hours": settings.ABONENT_LAWFUL_FILE_HOURS}
    return render(request, "lawful/requests.html", context)


@never_cache
@require_perm(Perm.LAWFUL_EXPORT)
def create(request):
    form = RequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.do_request_export(acting_user=request.user, **data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
            form.mark_invalid()
        else:
            return redirect("lawful:requests")
    return render(request, "lawful/request_form.html", {"form": form}, status=422 if form.errors else 200)


# GET only: a HEAD (a link preview, a download manager's probe) ran the view and was audited as a download that
# sent nothing.
@never_cache
@require_GET
@require_perm(Perm.LAWFUL_EXPORT)
def download(request, pk: int):
    export = get_object_or_404(ExportRequest, pk=pk, requested_by=request.user)
    try:
        fh = actions.do_download_export(export, acting_user=request.user)
    except LookupError:
        raise Http404 from None
    except FileNotFoundError:
        return render(request, "lawful/gone.html", {"export": export}, status=410)
    name = f"lawful-{export.pk}-{export.format}.zip"
    response = FileResponse(fh, as_attachment=True, filename=name, content_type="application/zip")
    response["Cache-Control"] = "no-store"
    return response
