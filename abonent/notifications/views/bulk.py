"""Bulk messages: the list with each one's progress, the form with its preview (how many will get it, how many
cannot, a sample rendered for one of them) before confirming, and cancelling what is not sent yet."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, allowed_branch_ids, require_perm

from .. import actions, selectors
from ..calculations import sms_length
from ..forms import BulkForm
from ..models import Channel
from ..placeholders import placeholders
from ..placeholders import render as render_text
from ..queueing import subscriber_values


@require_perm(Perm.NOTIFICATION_VIEW)
def bulk_list(request):
    return render(
        request,
        "notifications/bulk_list.html",
        {
            "tab": "bulk",
            "bulks": selectors.bulk_messages(request.user),
            "can_send": request.user.has_perm(Perm.NOTIFICATION_BULK),
        },
    )


def _data(form) -> actions.BulkData:
    key, pk = form.cleaned_data["target"]
    return actions.BulkData(
        audience=key,
        audience_id=pk,
        channel=form.cleaned_data["channel"],
        subject=form.cleaned_data.get("subject") or "",
        body=form.cleaned_data["body"],
        marketing=form.cleaned_data["marketing"],
        per_minute=form.cleaned_data["per_minute"],
    )


_FIELDS = {"audience": "target", "audience_id": "target"}


@require_perm(Perm.NOTIFICATION_BULK)
def bulk_new(request):
    form = BulkForm(request.POST or None)
    context = {"tab": "bulk", "form": form, "placeholders": placeholders("bulk"), "preview": None}
    if request.method != "POST":
        return render(request, "notifications/bulk_form.html", context)
    data = None
    if form.is_valid():
        try:
            data, _label = actions.clean_bulk(_data(form))
        except ValidationError as exc:
            apply_action_errors(form, exc, _FIELDS)
    if data is None:
        return render(request, "notifications/bulk_form.html", context, status=422)
    ids = selectors.audience_ids(data.audience, data.audience_id, branch_ids=allowed_branch_ids(request.user))
    reach = selectors.bulk_reach(ids, data.channel, marketing=data.marketing)
    if request.POST.get("step") == "confirm":
        try:
            bulk = actions.do_create_bulk(data, recipients=reach.total, acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc, _FIELDS)
        else:
            messages.success(
                request,
                _("The bulk message is queued: %(n)d recipients, %(rate)d a minute.")
                % {"n": reach.will_send, "rate": bulk.per_minute},
            )
            return redirect("notifications:bulk_list")
    sample = None
    if reach.sample is not None:
        values = subscriber_values(reach.sample)
        text = render_text(data.body, values)
        sample = {
            "subscriber": reach.sample,
            "subject": render_text(data.subject, values) if data.channel == Channel.EMAIL else "",
            "body": text,
            "sms": sms_length(text) if data.channel == Channel.SMS else None,
        }
    minutes = -(-reach.will_send // data.per_minute) if reach.will_send else 0
    context.update(preview={"reach": reach, "sample": sample, "minutes": minutes})
    return render(request, "notifications/bulk_form.html", context, status=422 if form.errors else 200)


@require_POST
@require_perm(Perm.NOTIFICATION_BULK)
def bulk_cancel(request, pk: int):
    bulk = get_object_or_404(selectors.visible_bulks(request.user), pk=pk)  # another branch's: 404
    try:
        cancelled = actions.do_cancel_bulk(bulk, acting_user=request.user)
        messages.success(request, _("Cancelled: %(n)d messages not sent.") % {"n": cancelled})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("notifications:bulk_list")
