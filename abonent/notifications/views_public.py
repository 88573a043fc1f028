"""Public endpoints (no login): the unsubscribe link of e-mails and the Telegram bot's webhook."""

from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from abonent.core import audit, clock
from abonent.subscribers.models import Subscriber

from .channels.email import unsubscribe_subscriber_id
from .models import Preference
from .telegram_link import handle_update

logger = logging.getLogger(__name__)


def do_unsubscribe_email(subscriber: Subscriber) -> bool:
    """Turn the subscriber's e-mail off; ``False`` when it already was (the link is idempotent)."""
    with transaction.atomic():
        preference, _created = Preference.objects.select_for_update().get_or_create(
            subscriber=subscriber, defaults={"updated_at": clock.now()}
        )
        if not preference.email:
            return False
        preference.email = False
        preference.updated_at = clock.now()
        preference.save(update_fields=["email", "updated_at"])
        audit.record(
            actor=None,
            actor_label="unsubscribe-link",
            action="notifications.email_unsubscribed",
            obj=preference,
            before={"email": True},
            after={"email": False},
            subscriber_id=subscriber.pk,
        )
    return True


# One-click unsubscribe (RFC 8058) is a POST from the mail provider without a CSRF token: the signed token in
# the address is what authorises it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET: a page asking to confirm; POST: e-mail off. A forged or damaged token is a 400 page."""
    subscriber_id = unsubscribe_subscriber_id(token)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first() if subscriber_id else None
    if subscriber is None:
        return render(request, "notifications/unsubscribe.html", {"state": "invalid"}, status=400)
    if request.method == "POST":
        do_unsubscribe_email(subscriber)
        return render(request, "notifications/unsubscribe.html", {"state": "done"})
    return render(request, "notifications/unsubscribe.html", {"state": "confirm", "token": token})


@csrf_exempt
@require_POST
def telegram_webhook(request):
    """``POST /notifications/telegram/webhook``: the Bot API's updates. The secret set with ``setWebhook``
    (``secret_token``) comes back in ``X-Telegram-Bot-Api-Secret-Token``; without a configured secret the
    webhook is off. An update is answered 200 even when the bot cannot use it (logged and ignored); only a body
    that is not an update (not JSON, no ``update_id``) is a 400. A handled update is answered 200 (Telegram
    would resend it otherwise), a reply to ``/start`` rides on that answer as a ``sendMessage`` call (the Bot
    API's webhook reply)."""
    secret = settings.ABONENT_TELEGRAM_WEBHOOK_SECRET
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return HttpResponse(status=403)
    try:
        # Not JSON, or JSON without an ``update_id``: 400. An update with fields the bot cannot use: logged,
        # ignored and answered 200 by ``handle_update``, never a 500 that Telegram would deliver again.
        reply = handle_update(json.loads(request.body))
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"error": "malformed_update"}, status=400)
    except DatabaseError:
        logger.exception("telegram update could not be handled: the database failed")
        return HttpResponse(status=503)  # Telegram delivers it again
    if reply is None:
        return JsonResponse({})
    return JsonResponse({"method": "sendMessage", "chat_id": reply.chat_id, "text": reply.text})
