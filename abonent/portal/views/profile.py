"""Profile: contacts (the phone or e-mail codes go to changes only with the current password, and a new one only
with the code sent to it: ``/my/profile/contacts/confirm/``), notification preferences, Telegram linking, consents,
and the way to the security page (password, sessions). Each form posts to its own route and comes back to the page;
a refused one is shown again with its errors (422)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _

from abonent.core.forms import apply_action_errors
from abonent.notifications.telegram_link import TOKEN_TTL

from .. import codes, profile_changes, profile_data
from ..forms.profile import QUIET_HELP, ConsentsForm, ContactCodeForm, ContactsForm, NotificationsForm


def _contacts_initial(contacts: profile_data.Contacts) -> dict:
    return {
        "phone": contacts.phone.display_value if contacts.phone else "",
        "email": contacts.email.value if contacts.email else "",
    }


def _preferences_initial(preference) -> dict:
    if preference is None:
        return {"email": True, "sms": True, "telegram": True}
    names = ("email", "sms", "telegram", "language", "quiet_from", "quiet_to")
    return {name: getattr(preference, name) for name in names}


def _page(request, *, status: int = 200, contacts_form=None, consents_form=None, notifications_form=None, link=""):
    subscriber = request.subscriber
    contacts = profile_data.contacts_of(subscriber)
    preference = profile_data.preference_of(subscriber)
    context = {
        "subscriber": subscriber,
        "contacts": contacts,
        "pending": profile_data.pending_contacts(subscriber),
        "contacts_form": contacts_form or ContactsForm(initial=_contacts_initial(contacts), auto_id="contacts-%s"),
        "has_password": profile_data.has_password(subscriber),
        "consents_form": consents_form
        or ConsentsForm(initial={"consent_marketing": subscriber.consent_marketing}, auto_id="consents-%s"),
        "notifications_form": notifications_form
        or NotificationsForm(initial=_preferences_initial(preference), auto_id="notifications-%s"),
        "chats": profile_data.chats_of(subscriber),
        "telegram_available": profile_data.telegram_available(),
        "telegram_link": link,
        "telegram_qr": profile_data.qr_svg(link) if link else "",
        "telegram_link_hours": int(TOKEN_TTL.total_seconds() // 3600),
        "quiet_help": QUIET_HELP,
    }
    return render(request, "portal/profile.html", context, status=status)


def profile(request):
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    return _page(request)


def _post_only(request):
    return None if request.method == "POST" else HttpResponseNotAllowed(["POST"])


def _done(request, text: str, anchor: str):
    messages.success(request, text)
    return redirect(reverse("portal:profile") + f"#{anchor}")


def contacts_change(request):
    if refused := _post_only(request):
        return refused
    form = ContactsForm(request.POST, auto_id="contacts-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            change = profile_changes.change_contacts(
                request.subscriber,
                phone=data["phone"],
                email=data["email"],
                password=data["current_password"],
                request=request,
            )
        except ValidationError as exc:
            apply_action_errors(form, exc, field_map={"value": "phone"})
            form.mark_invalid()
        else:
            if change.sent:
                return redirect("portal:profile_contacts_confirm")
            return _done(request, _("Contacts saved.") if change.changed else _("Nothing to change."), "contacts")
    return _page(request, contacts_form=form, status=422)


def contacts_confirm(request):
    """The code sent to a new phone or e-mail: GET asks for it, POST checks it and makes the change."""
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    status = 200
    form = ContactCodeForm(request.POST or None, auto_id="confirm-%s")
    if request.method == "POST":
        if form.is_valid():
            try:
                confirmed = profile_changes.confirm_contact(request.subscriber, form.cleaned_data["code"])
            except ValidationError as exc:
                apply_action_errors(form, exc)
                form.mark_invalid()
            else:
                text = (
                    _("The phone is changed: SMS and login codes go to %(value)s.")
                    if confirmed.kind == "phone"
                    else _("The e-mail is changed: e-mails and login codes go to %(value)s.")
                )
                return _done(request, text % {"value": confirmed.display_value}, "contacts")
        status = 422
    pending = profile_data.pending_contacts(request.subscriber)
    if not pending and status == 200:
        return redirect(reverse("portal:profile") + "#contacts")
    context = {"form": form, "pending": pending, "minutes": codes.code_minutes()}
    return render(request, "portal/profile_confirm.html", context, status=status)


def consents_change(request):
    if refused := _post_only(request):
        return refused
    form = ConsentsForm(request.POST, auto_id="consents-%s")
    form.is_valid()  # a checkbox: always valid
    consent = form.cleaned_data.get("consent_marketing", False)
    try:
        profile_changes.set_marketing_consent(request.subscriber, consent)
    except ValidationError as exc:
        apply_action_errors(form, exc)
        return _page(request, consents_form=form, status=422)
    return _done(request, _("Your choice is saved."), "consents")


def notifications_change(request):
    if refused := _post_only(request):
        return refused
    form = NotificationsForm(request.POST, auto_id="notifications-%s")
    if form.is_valid():
        try:
            # The form carries every field: unticked boxes are "off", empty times "the default hours".
            profile_changes.save_preferences(request.subscriber, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
            form.mark_invalid()
        else:
            return _done(request, _("Notification settings saved."), "notifications")
    return _page(request, notifications_form=form, status=422)


def telegram_link(request):
    if refused := _post_only(request):
        return refused
    try:
        link = profile_changes.telegram_link(request.subscriber)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:profile")
    # Shown on this answer only: the link works once and is not kept anywhere in clear.
    return _page(request, link=link)


def telegram_unlink(request, pk: int):
    chat = profile_data.own_chat(request, pk)
    if refused := _post_only(request):
        return refused
    profile_changes.unlink_telegram(chat)
    return _done(request, _("Telegram chat unlinked: no more messages there."), "telegram")


urlpatterns = [
    path("profile/", profile, name="profile"),
    path("profile/contacts/", contacts_change, name="profile_contacts"),
    path("profile/contacts/confirm/", contacts_confirm, name="profile_contacts_confirm"),
    path("profile/consents/", consents_change, name="profile_consents"),
    path("profile/notifications/", notifications_change, name="profile_notifications"),
    path("profile/telegram/", telegram_link, name="profile_telegram"),
    path("profile/telegram/<int:pk>/unlink/", telegram_unlink, name="profile_telegram_unlink"),
]
