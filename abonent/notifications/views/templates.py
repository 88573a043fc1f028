"""Message templates: the matrix of every event, channel and language with what is in use; the edit form with
its live preview (rendered with sample data as the operator types), reset to the built-in text."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, check_perm, has_perm, require_perm

from .. import actions, selectors
from ..calculations import sms_length
from ..forms import TemplateForm
from ..models import Channel, Event
from ..placeholders import check_template, placeholders
from ..placeholders import render as render_text
from ..templates_default import default_template


@require_perm(Perm.NOTIFICATION_VIEW)
def template_list(request):
    return render(
        request,
        "notifications/templates_list.html",
        {"tab": "templates", "rows": selectors.template_matrix(), "languages": settings.LANGUAGES},
    )


def _key(event: str, channel: str, language: str) -> tuple[str, str, str]:
    if event not in Event.values or event == Event.BULK or channel not in Channel.values:
        raise Http404
    if language not in dict(settings.LANGUAGES):
        raise Http404
    return event, channel, language


@require_perm(Perm.NOTIFICATION_VIEW)
def template_edit(request, event: str, channel: str, language: str):
    event, channel, language = _key(event, channel, language)
    can_manage = has_perm(request.user, Perm.NOTIFICATION_MANAGE)
    custom = selectors.template_of(event, channel, language)
    in_use = custom if custom is not None and custom.is_active else None
    subject, body = (in_use.subject, in_use.body) if in_use else default_template(event, channel, language)
    status = 200
    if request.method == "POST":
        check_perm(request.user, Perm.NOTIFICATION_MANAGE)
        form = TemplateForm(request.POST, channel=channel)
        if form.is_valid():
            try:
                actions.do_save_template(
                    event,
                    channel,
                    language,
                    subject=form.cleaned_data.get("subject", ""),
                    body=form.cleaned_data["body"],
                    acting_user=request.user,
                )
                messages.success(request, _("The template is saved and in use."))
                return redirect("notifications:template_edit", event=event, channel=channel, language=language)
            except ValidationError as exc:
                apply_action_errors(form, exc)
        status = 422
    else:
        form = TemplateForm(initial={"subject": subject, "body": body}, channel=channel)
    if not can_manage:
        for field in form.fields.values():
            field.disabled = True
    context = {
        "tab": "templates",
        "form": form,
        "event": event,
        "event_label": Event(event).label,
        "channel": channel,
        "channel_label": Channel(channel).label,
        "language": language,
        "custom": custom,
        "in_use": in_use,
        "can_manage": can_manage,
        "placeholders": placeholders(event),
        "preview": _preview(event, channel, subject, body),
    }
    return render(request, "notifications/template_edit.html", context, status=status)


def _preview(event: str, channel: str, subject: str, body: str) -> dict:
    """The text rendered with sample values, its SMS length, or what is wrong with it."""
    try:
        check_template(event, subject, body)
    except ValidationError as exc:
        return {"errors": exc.messages}
    values = selectors.sample_values(event)
    text = render_text(body, values)
    return {
        "subject": render_text(subject, values) if channel == Channel.EMAIL else "",
        "body": text,
        "sms": sms_length(text) if channel == Channel.SMS else None,
    }


@require_POST
@require_perm(Perm.NOTIFICATION_VIEW)
def template_preview(request):
    """The preview fragment for the edit form (HTMX, as the operator types); 200 with the errors in it."""
    event = request.POST.get("event", "")
    channel = request.POST.get("channel", "")
    if event not in Event.values or channel not in Channel.values:
        raise Http404
    subject = request.POST.get("subject", "")[:200]
    body = request.POST.get("body", "")[:4000]
    return render(request, "notifications/_preview.html", {"preview": _preview(event, channel, subject, body)})


@require_POST
@require_perm(Perm.NOTIFICATION_MANAGE)
def template_reset(request, event: str, channel: str, language: str):
    event, channel, language = _key(event, channel, language)
    actions.do_reset_template(event, channel, language, acting_user=request.user)
    messages.success(request, _("The built-in text is in use again."))
    return redirect("notifications:template_edit", event=event, channel=channel, language=language)
