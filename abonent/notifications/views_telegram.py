"""The console's "link Telegram" button on the subscriber card: a one-time deep link to hand the subscriber."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_POST

from abonent.staff.permissions import Perm, require_perm
from abonent.subscribers.selectors import get_subscriber

from .telegram_link import TOKEN_TTL, issue_link


@require_perm(Perm.SUBSCRIBER_EDIT)
@require_POST
def telegram_link(request, pk: int):
    subscriber = get_subscriber(request.user, pk)
    if not settings.ABONENT_TELEGRAM_BOT_NAME:
        return render(request, "notifications/_telegram_link.html", {"subscriber": subscriber}, status=409)
    link = issue_link(subscriber, acting_user=request.user)
    hours = int(TOKEN_TTL.total_seconds() // 3600)
    return render(
        request, "notifications/_telegram_link.html", {"subscriber": subscriber, "link": link, "hours": hours}
    )
