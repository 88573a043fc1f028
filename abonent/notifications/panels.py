"""The notifications panel of the subscriber card (NOTIFICATION_VIEW): the last messages with their status and
why one was not sent, a link to the whole log; the preferences (changed with SUBSCRIBER_EDIT); linked Telegram
chats. Its queries do not grow with the history."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors
from .forms import PreferenceForm
from .models import Channel

RECENT = 10


def notifications_context(request, subscriber, form=None, notice: str = "", **_ignored) -> dict:
    preference = selectors.preference_of(subscriber)
    can_edit = has_perm(request.user, Perm.SUBSCRIBER_EDIT)
    if can_edit and form is None:
        initial = {"email": True, "sms": True, "telegram": True}
        if preference is not None:
            initial = {
                name: getattr(preference, name)
                for name in ("email", "sms", "telegram", "language", "time_zone", "quiet_from", "quiet_to")
            }
        form = PreferenceForm(initial=initial, auto_id="prefs-%s")
    rows = selectors.message_rows(selectors.subscriber_messages(subscriber, limit=RECENT))
    channels_on = [label for value, label in Channel.choices if preference is None or getattr(preference, value)]
    return {
        "rows": rows,
        "preference": preference,
        "channels_on": channels_on,
        "chats": selectors.chats_of(subscriber),
        "pref_form": form if can_edit else None,
        # The deep link is issued by a POST (delivery's telegram_link view), to those who may edit the subscriber.
        "can_link_telegram": can_edit,
        "notice": notice,
    }


PANEL = register_panel(
    Panel(
        "notifications",
        _("Notifications"),
        "notifications/panels/notifications.html",
        11,
        notifications_context,
        Perm.NOTIFICATION_VIEW,
    )
)


def render_panel(request, subscriber, **overrides) -> SafeString:
    context = PANEL.context(request=request, subscriber=subscriber, **overrides)
    html = render_to_string(PANEL.template, {"subscriber": subscriber, "panel": PANEL, **context}, request=request)
    return mark_safe(html)  # noqa: S308 — rendered by the template engine, escaped there


register_action_labels(
    {
        "notifications.preferences_updated": _("Notification preferences changed"),
        "notifications.email_unsubscribed": _("Unsubscribed from email"),
        "notifications.telegram_link_issued": _("Telegram link issued"),
        "notifications.telegram_linked": _("Telegram linked"),
        "notifications.template_saved": _("Message template saved"),
        "notifications.template_reset": _("Message template reset"),
        "notifications.bulk_created": _("Bulk message created"),
        "notifications.bulk_cancelled": _("Bulk message cancelled"),
        "notifications.message_retried": _("Message queued again"),
        "notifications.telegram_unlinked": _("Telegram chat unlinked"),
    },
    fields={
        "email": _("e-mail"),
        "sms": _("SMS"),
        "telegram": _("Telegram"),
        "language": _("language"),
        "time_zone": _("time zone"),
        "quiet_from": _("quiet from"),
        "quiet_to": _("quiet until"),
    },
)
