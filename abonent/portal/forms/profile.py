"""The profile's forms: contacts (with the current password), the code that confirms a new one, advertising
consent, notification preferences."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from abonent.notifications.actions import quiet_hours_half

from .requests import PortalForm


class ContactsForm(PortalForm):
    phone = forms.CharField(
        label=_("Mobile phone"),
        max_length=30,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
        help_text=_("SMS and login codes come here."),
    )
    email = forms.CharField(
        label=_("E-mail"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text=_("Receipts, documents and login codes by e-mail. Empty: none."),
    )
    current_password = forms.CharField(
        label=_("Current password"),
        required=False,
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Needed to change the phone or the e-mail."),
    )


class ContactCodeForm(PortalForm):
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}),
    )


class ConsentsForm(PortalForm):
    consent_marketing = forms.BooleanField(label=_("Tell me about offers and new plans"), required=False)


QUIET_HELP = _("No SMS or Telegram in these hours (e-mail waits for no one). Empty: the usual night hours.")


class NotificationsForm(PortalForm):
    email = forms.BooleanField(label=_("E-mail"), required=False)
    sms = forms.BooleanField(label=_("SMS"), required=False)
    telegram = forms.BooleanField(label=_("Telegram"), required=False)
    language = forms.ChoiceField(
        label=_("Language of messages"),
        required=False,
        choices=[("", _("The provider's default")), *list(settings.LANGUAGES)],
    )
    # Their help is one paragraph under both (``QUIET_HELP``), which each names as its description.
    quiet_from = forms.TimeField(
        label=_("Quiet from"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time", "aria-describedby": "quiet-help"}, format="%H:%M"),
    )
    quiet_to = forms.TimeField(
        label=_("Quiet until"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time", "aria-describedby": "quiet-help"}, format="%H:%M"),
    )

    def clean(self):
        data = super().clean()
        if "quiet_from" in data and "quiet_to" in data and (data["quiet_from"] is None) != (data["quiet_to"] is None):
            self.add_error("quiet_to", quiet_hours_half())
        return data
