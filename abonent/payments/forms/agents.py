"""The payment agent form and the reconciliation day picker. Fields come from the model (labels, help texts,
validators); the agent actions check what the model cannot (networks parse, time zone exists, limits agree)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm

from ..actions.agents import EDITABLE
from ..models import Agent
from ..selectors.dates import is_sane_day


def _model_field(name: str, **kwargs) -> forms.Field:
    return Agent._meta.get_field(name).formfield(**kwargs)


class AgentForm(ConsoleForm):
    code = _model_field("code")
    name = _model_field("name")
    inn = _model_field("inn")
    contract = _model_field("contract")
    active = _model_field("active")
    login = _model_field("login")
    networks = _model_field("networks", widget=forms.Textarea(attrs={"rows": 3}))
    commission_percent = _model_field("commission_percent")
    commission_fixed = _model_field("commission_fixed")
    commission_min = _model_field("commission_min")
    min_sum = _model_field("min_sum")
    max_sum = _model_field("max_sum")
    active_accounts_only = _model_field("active_accounts_only")
    show_details = _model_field("show_details")
    time_zone = _model_field("time_zone")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            # The channel of every payment it sent: fixed once created.
            del self.fields["code"]

    @staticmethod
    def initial_of(agent: Agent) -> dict:
        return {name: getattr(agent, name) for name in EDITABLE}

    def values(self) -> dict:
        return {name: self.cleaned_data[name] for name in EDITABLE}


def _sane_day(day):
    if day is not None and not is_sane_day(day):
        raise forms.ValidationError(_("Choose a day between 2000 and a year from today."), code="day_out_of_range")
    return day


class ReportDayForm(forms.Form):
    day = forms.DateField(label=_("Day"), widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}))

    def clean_day(self):
        return _sane_day(self.cleaned_data["day"])


REGISTER_MAX_BYTES = 10 * 1024 * 1024


class RegisterForm(forms.Form):
    """The agent's register to compare with ours: UTF-8 CSV ``txn_id;sum;account;date``."""

    register = forms.FileField(label=_("Agent's register (CSV)"))
    day = forms.DateField(
        label=_("Only this day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}),
    )

    def clean_day(self):
        return _sane_day(self.cleaned_data.get("day"))

    def clean_register(self):
        upload = self.cleaned_data["register"]
        if upload.size > REGISTER_MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 10 MB."), code="too_large")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("Save the register as UTF-8 text."), code="not_utf8") from None
