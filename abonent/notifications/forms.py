"""Console forms of notifications: a template, a subscriber's preferences, a bulk message, the outbox filters."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm

from .actions import quiet_hours_half
from .audiences import audiences
from .models import Channel, Event, MessageStatus
from .placeholders import check_template


class TemplateForm(ConsoleForm):
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    body = forms.CharField(label=_("Text"), max_length=4000, widget=forms.Textarea(attrs={"rows": 8}))

    def __init__(self, *args, channel: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if channel != Channel.EMAIL:
            del self.fields["subject"]


class PreferenceForm(ConsoleForm):
    email = forms.BooleanField(label=_("E-mail"), required=False)
    sms = forms.BooleanField(label=_("SMS"), required=False)
    telegram = forms.BooleanField(label=_("Telegram"), required=False)
    language = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", _("The installation's")), *list(settings.LANGUAGES)]
    )
    time_zone = forms.CharField(
        label=_("Time zone"), max_length=64, required=False, help_text=_("Empty: the branch's. Such as Europe/Moscow.")
    )
    quiet_from = forms.TimeField(label=_("Quiet from"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    quiet_to = forms.TimeField(
        label=_("Quiet until"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("No SMS or Telegram messages in these hours. Empty: the default hours; equal: none."),
    )

    def clean_time_zone(self):
        zone = self.cleaned_data["time_zone"].strip()
        if zone:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise forms.ValidationError(
                    _("Unknown time zone: give a name such as Europe/Moscow."), code="time_zone_invalid"
                ) from None
        return zone

    def clean(self):
        data = super().clean()
        if ("quiet_from" in data and "quiet_to" in data) and (data["quiet_from"] is None) != (data["quiet_to"] is None):
            self.add_error("quiet_to", quiet_hours_half())
        return data


def audience_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped for the select: each audience's choices as ``<key>:<id>``."""
    return [(str(a.label), [(f"{a.key}:{pk}", label) for pk, label in a.choices()]) for a in audiences() if a.listed]


class BulkForm(ConsoleForm):
    target = forms.ChoiceField(label=_("Recipients"))
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False, help_text=_("For e-mail."))
    body = forms.CharField(label=_("Text"), max_length=4000, widget=forms.Textarea(attrs={"rows": 6}))
    marketing = forms.BooleanField(
        label=_("Advertising"),
        required=False,
        help_text=_("Sent only to subscribers who agreed to advertising; the others are recorded as not sent."),
    )
    per_minute = forms.IntegerField(label=_("Messages per minute"), min_value=1, max_value=100_000, initial=600)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", "—"), *audience_choices()]

    def clean_body(self) -> str:
        check_template(Event.BULK, self.cleaned_data["body"])
        return self.cleaned_data["body"]

    def clean_subject(self) -> str:
        check_template(Event.BULK, self.cleaned_data["subject"])
        return self.cleaned_data["subject"]

    def clean_target(self) -> tuple[str, int]:
        key, _sep, pk = self.cleaned_data["target"].partition(":")
        return key, int(pk)


class OutboxFilterForm(ConsoleForm):
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", _("Any")), *MessageStatus.choices])
    channel = forms.ChoiceField(label=_("Channel"), required=False, choices=[("", _("Any")), *Channel.choices])
    event = forms.ChoiceField(label=_("Event"), required=False, choices=[("", _("Any")), *Event.choices])
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
