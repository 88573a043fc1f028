"""Forms of the network console pages and of the subscriber card's network panel. They parse and display;
the network actions decide what is valid (a secret too short, a MAC that is not one, a login taken).

Fields come from the models' own definitions (labels, help texts, choices, validators) so the console says
what the admin says. The NAS secret and login passwords are write-only: ``PasswordInput`` never renders a
value back, not even after a failed post.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from django import forms
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan, ServiceKind
from abonent.core import clock
from abonent.core.forms import ConsoleForm

from .actions import MIN_SECRET_LENGTH
from .models import IpPool, Login, Nas
from .monitoring.traffic import MAX_DAYS

_WRITE_ONLY = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def _model_field(model, name: str, **kwargs) -> forms.Field:
    return model._meta.get_field(name).formfield(**kwargs)


class NasForm(ConsoleForm):
    name = _model_field(Nas, "name")
    ip_address = _model_field(Nas, "ip_address")
    vendor = _model_field(Nas, "vendor")
    secret = forms.CharField(label=_("Shared secret"), required=False, strip=False, widget=_WRITE_ONLY)
    require_message_authenticator = _model_field(Nas, "require_message_authenticator")
    coa_port = _model_field(Nas, "coa_port")
    interim_interval = _model_field(Nas, "interim_interval")
    debtor_address_list = _model_field(Nas, "debtor_address_list")
    debtor_pool = _model_field(Nas, "debtor_pool")
    is_active = _model_field(Nas, "is_active")

    FIELDS = (
        "name",
        "ip_address",
        "vendor",
        "require_message_authenticator",
        "coa_port",
        "interim_interval",
        "debtor_address_list",
        "debtor_pool",
        "is_active",
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        secret = self.fields["secret"]
        if editing:
            secret.help_text = _("Leave empty to keep the current secret. It is never shown.")
        else:
            secret.required = True
            secret.help_text = _("At least %(n)d characters, the same as on the NAS. It is never shown again.") % {
                "n": MIN_SECRET_LENGTH
            }

    @classmethod
    def initial_of(cls, nas: Nas) -> dict:
        # Everything but the secret, which the form never has.
        return {name: getattr(nas, name) for name in cls.FIELDS}

    def nas_values(self) -> dict:
        """Keyword arguments of ``do_create_nas`` / ``do_update_nas`` (``secret`` is ``None`` to keep it)."""
        values = {name: self.cleaned_data[name] for name in self.FIELDS}
        values["secret"] = self.cleaned_data["secret"] or None
        return values


class IpPoolForm(ConsoleForm):
    name = _model_field(IpPool, "name")
    network = _model_field(IpPool, "network")
    kind = _model_field(IpPool, "kind")

    def clean_network(self) -> str:
        value = self.cleaned_data["network"].strip()
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise forms.ValidationError(_("Not a network in CIDR notation, such as 100.64.0.0/16.")) from None


class LoginForm(ConsoleForm):
    kind = _model_field(Login, "kind")
    username = _model_field(Login, "username")
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=_WRITE_ONLY,
        help_text=_("For PPPoE and hotspot logins."),
    )
    static_ip = _model_field(Login, "static_ip")
    pool = forms.ModelChoiceField(
        label=_("Address pool"), queryset=IpPool.objects.order_by("name"), required=False, empty_label=_("NAS default")
    )


class LoginPasswordForm(ConsoleForm):
    """A new password for a PPPoE or hotspot login: typed, or generated when left empty; shown to the operator
    once (``do_reset_login_password``), never again."""

    password = forms.CharField(
        label=_("New password"),
        required=False,
        strip=False,
        widget=_WRITE_ONLY,
        help_text=_("Empty: a password is generated. Either way it is shown once, now."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class LoginActiveForm(ConsoleForm):
    """Disable a login or enable it again."""

    active = forms.TypedChoiceField(
        choices=[("0", "0"), ("1", "1")], coerce=lambda v: v == "1", widget=forms.HiddenInput
    )
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class SessionFilterForm(ConsoleForm):
    """Filters of the sessions page; the cursor of its pages travels beside them, not in the form."""

    nas = forms.ModelChoiceField(
        label=_("NAS"), queryset=Nas.objects.order_by("name"), required=False, empty_label=_("All NAS")
    )
    login = forms.CharField(label=_("Login"), required=False, max_length=253)
    ip = forms.GenericIPAddressField(label=_("IP address"), required=False)
    plan = forms.ModelChoiceField(
        label=_("Plan"),
        queryset=Plan.objects.filter(service__kind=ServiceKind.INTERNET).order_by("name"),
        required=False,
        empty_label=_("All plans"),
    )


# The traffic page's calendar: no ISP has traffic before this day, nor more than a year ahead.
EARLIEST_TRAFFIC_DAY = dt.date(2000, 1, 1)
TRAFFIC_DAYS_AHEAD = 366


class TrafficPeriodForm(ConsoleForm):
    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def _within_calendar(self, day: dt.date | None) -> dt.date | None:
        if day is None:
            return day
        latest = clock.today() + dt.timedelta(days=TRAFFIC_DAYS_AHEAD)
        if not EARLIEST_TRAFFIC_DAY <= day <= latest:
            raise forms.ValidationError(
                _("Choose a day between %(first)s and %(last)s."),
                params={
                    "first": formats.date_format(EARLIEST_TRAFFIC_DAY, "SHORT_DATE_FORMAT"),
                    "last": formats.date_format(latest, "SHORT_DATE_FORMAT"),
                },
            )
        return day

    def clean_date_from(self):
        return self._within_calendar(self.cleaned_data.get("date_from"))

    def clean_date_to(self):
        return self._within_calendar(self.cleaned_data.get("date_to"))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end:
            if end < start:
                self.add_error("date_to", _("The end of the period is before its start."))
            elif (end - start).days >= MAX_DAYS:
                self.add_error("date_from", _("Choose a period of at most a year."))
        return cleaned
