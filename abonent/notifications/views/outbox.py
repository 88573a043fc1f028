"""The outbox: recent messages with filters and counts by status, or one subscriber's whole log; a failed message
sent again."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.staff.permissions import Perm, require_perm
from abonent.subscribers.selectors import get_subscriber

from .. import actions, selectors
from ..forms import OutboxFilterForm
from ..models import MessageStatus

PAGE = 100


@require_perm(Perm.NOTIFICATION_VIEW)
def outbox(request, subscriber_pk: int | None = None):
    subscriber = get_subscriber(request.user, subscriber_pk) if subscriber_pk is not None else None
    form = OutboxFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    bulk = request.GET.get("bulk", "")
    filters = selectors.MessageFilters(
        subscriber_id=subscriber.pk if subscriber else None,
        status=data.get("status") or "",
        channel=data.get("channel") or "",
        event=data.get("event") or "",
        created_from=data.get("date_from"),
        created_to=data.get("date_to"),
        bulk_id=int(bulk) if bulk.isdigit() else None,
    )
    counts = selectors.status_counts(
        selectors.filtered_messages(request.user, selectors.MessageFilters(**{**filters.__dict__, "status": ""}))
    )
    context = {
        "tab": "log" if subscriber else "outbox",
        "subscriber": subscriber,
        "form": form,
        "rows": selectors.message_rows(selectors.recent_messages(request.user, filters, limit=PAGE)),
        "counts": [(value, label, counts[value]) for value, label in MessageStatus.choices],
        "limit": PAGE,
        "can_retry": actions.can_retry(request.user),
        "query_string": request.GET.urlencode(),
    }
    return render(request, "notifications/outbox.html", context)


@require_POST
@require_perm(Perm.NOTIFICATION_VIEW)
def retry(request, pk: int):
    message = get_object_or_404(selectors.visible_messages(request.user), pk=pk)
    try:
        actions.do_retry_message(message, acting_user=request.user)
        messages.success(request, _("The message is queued again."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    back = request.POST.get("next", "")
    if not back.startswith("/staff/notifications/"):
        back = reverse("notifications:outbox")
    return redirect(back)
