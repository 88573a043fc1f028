"""The "Portal" panel's two buttons on the subscriber card (SUBSCRIBER_EDIT). With HTMX each answers with the
panel and what happened; without, a redirect back to the card with a message."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from abonent.staff.permissions import Perm, require_perm
from abonent.subscribers.panels import render_panel
from abonent.subscribers.selectors import get_subscriber

from . import actions
from .codes import Sent
from .panels import PANEL


def _answer(request, subscriber, *, notice: str = "", error: str = ""):
    if not request.htmx:
        (messages.error if error else messages.success)(request, error or notice)
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-portal")
    html = render_panel(request, subscriber, PANEL, notice=notice, error=error)
    return HttpResponse(html, status=422 if error else 200)


@require_POST
@require_perm(Perm.SUBSCRIBER_EDIT)
def send_code(request, pk: int):
    subscriber = get_subscriber(request.user, pk)
    sent = actions.do_send_login_code(subscriber, acting_user=request.user)
    if sent == Sent.SENT:
        return _answer(request, subscriber, notice=_("A login code has been sent by SMS."))
    reasons = {
        Sent.NO_ADDRESS: _("Not sent: the subscriber has no phone number."),
        Sent.TOO_SOON: _("Not sent: a code went out less than a minute ago."),
        Sent.HOURLY_LIMIT: _("Not sent: the hourly limit of codes for this subscriber is reached."),
    }
    return _answer(request, subscriber, error=reasons.get(sent, _("Not sent.")))


@require_POST
@require_perm(Perm.SUBSCRIBER_EDIT)
def end_sessions(request, pk: int):
    subscriber = get_subscriber(request.user, pk)
    count = actions.do_end_portal_sessions(subscriber, acting_user=request.user)
    notice = ngettext("%(count)d portal session ended.", "%(count)d portal sessions ended.", count) % {"count": count}
    return _answer(request, subscriber, notice=notice)
