from django import forms
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm

from .audit_log import FILTER_DATE_MAX, FILTER_DATE_MIN


class LoginForm(ConsoleForm):
    username = forms.CharField(
        label=_("Login"), max_length=150, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"})
    )
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class CodeForm(ConsoleForm):
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        help_text=_("Six digits from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "one-time-code", "spellcheck": "false"}),
    )


class EnrolmentCodeForm(ConsoleForm):
    code = forms.CharField(
        label=_("Code from the app"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )


class PasswordAndCodeForm(ConsoleForm):
    """Re-authentication before a change to one's own second factor."""

    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        help_text=_("Six digits from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )


ACTOR_PROCESSES = "processes"
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class AuditFilterForm(ConsoleForm):
    """The audit viewer's filters; every one optional (none: the newest events)."""

    who = forms.ChoiceField(label=_("Who"), required=False)
    subscriber = forms.CharField(
        label=_("Subscriber"), required=False, max_length=255, help_text=_("Account number or the name's beginning.")
    )
    action = forms.ChoiceField(label=_("Action"), required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label=_("To"), required=False, widget=DATE_INPUT)

    def _bounded(self, name: str):
        day = self.cleaned_data.get(name)
        if day is not None and not FILTER_DATE_MIN <= day <= FILTER_DATE_MAX:
            raise forms.ValidationError(
                _("Give a date from %(first)s to %(last)s."),
                code="date_out_of_range",
                params={
                    "first": formats.date_format(FILTER_DATE_MIN, "SHORT_DATE_FORMAT"),
                    "last": formats.date_format(FILTER_DATE_MAX, "SHORT_DATE_FORMAT"),
                },
            )
        return day

    def clean_date_from(self):
        return self._bounded("date_from")

    def clean_date_to(self):
        return self._bounded("date_to")

    def __init__(self, *args, staff_users=(), actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["who"].choices = [
            ("", _("Anyone")),
            (ACTOR_PROCESSES, _("Processes (no person)")),
            *((str(user.pk), user.get_full_name() or user.get_username()) for user in staff_users),
        ]
        self.fields["action"].choices = [("", _("Any action")), *actions]

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", forms.ValidationError(_("The end is before the start."), code="dates_reversed"))
        return data
