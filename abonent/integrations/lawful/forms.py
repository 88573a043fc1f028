"""The console's request form: what the officer types. The action checks it all again (``do_request_export``)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import StyledForm

from .formats import format_choices
from .models import BasisKind

DATETIME = {"type": "datetime-local"}
VALUES_HELP = _("One per line, or separated by commas or spaces.")


def _datetime(label, help_text=""):
    return forms.DateTimeField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.DateTimeInput(attrs=DATETIME, format="%Y-%m-%dT%H:%M"),
    )


def _values(label, help_text=VALUES_HELP):
    return forms.CharField(
        label=label, required=False, help_text=help_text, widget=forms.Textarea(attrs={"rows": 2}), max_length=4000
    )


class RequestForm(StyledForm):
    basis_kind = forms.ChoiceField(label=_("Legal basis"), choices=BasisKind.choices)
    basis_number = forms.CharField(label=_("Document number"), max_length=100)
    basis_date = forms.DateField(label=_("Document date"), widget=forms.DateInput(attrs={"type": "date"}))
    period_start = _datetime(_("Period from"), _("Your time zone. At most a year, within the last three years."))
    period_end = _datetime(_("Period to"))
    accounts = _values(_("Account numbers"), _("Ours or the old system's. One per line, or separated by commas."))
    logins = _values(_("Logins"))
    phones = _values(_("Phones"), _("One per line, or separated by commas."))
    ips = _values(_("IP addresses"))
    ip_at = _datetime(_("IP address at"), _("Who had the address at this instant; empty: over the whole period."))
    macs = _values(_("MAC addresses"))
    format = forms.ChoiceField(label=_("Format"), choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["format"].choices = format_choices()
