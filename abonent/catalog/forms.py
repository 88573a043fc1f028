"""Forms of the catalog console: they parse and display; the catalog actions decide what is valid.

Speeds are typed in Mbit/s and traffic in GB, the units plans are sold in; the models keep kbit/s and bytes,
the units NAS attributes and accounting counters use.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.db.models import Q
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from abonent.core import clock
from abonent.core.forms import AsciiDecimalField, ConsoleForm, MoneyDecimalField
from abonent.core.money import format_money

from .models import (
    MAX_TURBO_HOURS,
    ChargeMode,
    DailyPricing,
    FreezePolicy,
    OverageRounding,
    PeriodAnchor,
    Plan,
    PromisedPaymentPolicy,
    ProrationUnit,
    Service,
    TimeUnit,
    TrafficDirection,
    TrafficPolicy,
    Turbo,
)

# Decimal prefixes, as Mikrotik's rate limits ("100M" = 100,000 kbit/s) and traffic packages are quoted.
KBPS_PER_MBPS = 1000
BYTES_PER_GB = 1000**3

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME_WIDGET = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def kbps_to_mbps(kbps: int | None) -> Decimal | None:
    return None if kbps is None else Decimal(kbps) / KBPS_PER_MBPS


def mbps_to_kbps(mbps: Decimal | None) -> int | None:
    return None if mbps is None else int(mbps * KBPS_PER_MBPS)


def bytes_to_gb(size: int | None) -> Decimal | None:
    return None if size is None else Decimal(size) / BYTES_PER_GB


def gb_to_bytes(gb: Decimal | None) -> int | None:
    return None if gb is None else int(gb * BYTES_PER_GB)


def money_field(label, *, required: bool = True, **kwargs) -> MoneyDecimalField:
    """An amount in roubles and kopecks, typed with a comma or a point whatever the language."""
    return MoneyDecimalField(
        label=label,
        required=required,
        max_digits=14,
        decimal_places=2,
        localize=True,  # shown as the language writes it; parsed by MoneyDecimalField whatever the language
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        **kwargs,
    )


def speed_field(
    label, *, required: bool = False, min_value: Decimal = Decimal("0"), help_text: str = ""
) -> AsciiDecimalField:
    # Three places: 0.512 Mbit/s is a whole 512 kbit/s.
    return AsciiDecimalField(
        label=label,
        required=required,
        help_text=help_text,
        min_value=min_value,
        max_digits=10,
        decimal_places=3,
        localize=True,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )


def turbo_label(turbo: Turbo) -> str:
    """A turbo option as a choice reads: name, speed, hours and price, in the active language's formats."""
    return ngettext(
        "%(name)s: %(down)s/%(up)s Mbit/s for %(hours)d hour, %(price)s",
        "%(name)s: %(down)s/%(up)s Mbit/s for %(hours)d hours, %(price)s",
        turbo.hours,
    ) % {
        "name": turbo.name,
        "down": number_format(kbps_to_mbps(turbo.download_kbps), force_grouping=True),
        "up": number_format(kbps_to_mbps(turbo.upload_kbps), force_grouping=True),
        "hours": turbo.hours,
        "price": format_money(turbo.price),
    }


class TurboChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Turbo) -> str:
        return turbo_label(obj)


class PlanPriceForm(ConsoleForm):
    valid_from = forms.DateField(label=_("Valid from"), widget=DATE_WIDGET)
    monthly_fee = money_field(_("Monthly fee"))
    daily_fee = money_field(
        _("Daily fee"), required=False, help_text=_("Only for daily plans with a fixed daily price.")
    )
    activation_fee = money_field(_("Activation fee"), initial=Decimal("0.00"))
    unit_price = money_field(
        _("Price per unit of time"), required=False, help_text=_("Only for plans charged by time online.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["valid_from"].initial = lambda: clock.today() + dt.timedelta(days=1)

    def price_values(self) -> dict:
        data = self.cleaned_data
        return {
            "valid_from": data["valid_from"],
            "monthly_fee": data["monthly_fee"],
            "daily_fee": data["daily_fee"],
            "activation_fee": data["activation_fee"] if data["activation_fee"] is not None else Decimal("0.00"),
            "unit_price": data["unit_price"],
        }


class PlanFilterForm(ConsoleForm):
    q = forms.CharField(
        label=_("Name or code"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    service = forms.ModelChoiceField(
        label=_("Service"), required=False, queryset=Service.objects.order_by("name"), empty_label=_("Any service")
    )
    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        choices=[
            ("", _("Any")),
            ("offered", _("Offered")),
            ("not_offered", _("Not offered")),
            ("archived", _("Archived")),
        ],
    )


class PlanCreateForm(ConsoleForm):
    code = forms.SlugField(label=_("Code"), max_length=50, help_text=_("Latin letters, digits and dashes."))
    name = forms.CharField(label=_("Name"), max_length=150)
    service = forms.ModelChoiceField(label=_("Service"), queryset=Service.objects.filter(is_active=True))
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    is_public = forms.BooleanField(label=_("Offered to new subscribers"), required=False, initial=True)

    charge_mode = forms.ChoiceField(label=_("Charge mode"), choices=ChargeMode.choices, initial=ChargeMode.MONTHLY)
    period_anchor = forms.ChoiceField(
        label=_("Billing period"), choices=PeriodAnchor.choices, initial=PeriodAnchor.CALENDAR
    )
    daily_pricing = forms.ChoiceField(label=_("Daily price"), choices=DailyPricing.choices, initial=DailyPricing.SPLIT)
    charge_only_if_online = forms.BooleanField(label=_("Charge a day only if online the day before"), required=False)
    proration_unit = forms.ChoiceField(label=_("Proration"), choices=ProrationUnit.choices, initial=ProrationUnit.DAYS)

    monthly_fee = money_field(_("Monthly fee"))
    daily_fee = money_field(
        _("Daily fee"), required=False, help_text=_("Only for daily plans with a fixed daily price.")
    )
    activation_fee = money_field(_("Activation fee"), required=False, initial=Decimal("0.00"))
    unit_price = money_field(
        _("Price per unit of time"), required=False, help_text=_("Only for plans charged by time online.")
    )
    time_unit = forms.ChoiceField(
        label=_("Time unit"), choices=TimeUnit.choices, initial=TimeUnit.MINUTE, required=False
    )
    free_minutes = forms.IntegerField(
        label=_("Free minutes per session"), min_value=0, max_value=1440, initial=0, required=False
    )
    minimum_session_charge = money_field(_("Minimum charge per session"), required=False, initial=Decimal("0.00"))
    valid_from = forms.DateField(
        label=_("Price valid from"), required=False, widget=DATE_WIDGET, help_text=_("Empty: today.")
    )

    download_mbps = speed_field(_("Download, Mbit/s"), required=True)
    upload_mbps = speed_field(_("Upload, Mbit/s"), required=True)
    # The NAS's burst: a few seconds of extra speed at the start of a transfer, free, part of the plan. Not the paid
    # turbo options (catalog.Turbo), which the Russian console calls "Турбо": it is named apart (issue 17).
    burst_download_mbps = speed_field(
        _("Short burst: download, Mbit/s"),
        help_text=_("A few seconds of extra speed when a transfer starts (the NAS's burst); not the paid turbo."),
    )
    burst_upload_mbps = speed_field(_("Short burst: upload, Mbit/s"))
    burst_seconds = forms.IntegerField(label=_("Short burst: time, s"), required=False, min_value=1, max_value=32767)
    night_download_mbps = speed_field(_("Night download, Mbit/s"))
    night_upload_mbps = speed_field(_("Night upload, Mbit/s"))
    night_starts_at = forms.TimeField(label=_("Night from"), required=False, widget=TIME_WIDGET)
    night_ends_at = forms.TimeField(label=_("Night until"), required=False, widget=TIME_WIDGET)

    included_gb = AsciiDecimalField(
        label=_("Included traffic, GB"),
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=3,
        localize=True,
        help_text=_("Empty: unlimited."),
    )
    overage_price_per_gb = AsciiDecimalField(
        label=_("Price per GB over the included traffic"),
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=4,
        localize=True,
    )
    overage_rounding = forms.ChoiceField(
        label=_("Overage rounding"), choices=OverageRounding.choices, initial=OverageRounding.PER_GB
    )
    # Not required: an integration posting the form as it was before these existed gets the model's defaults.
    traffic_policy = forms.ChoiceField(
        label=_("Past the included traffic"),
        choices=TrafficPolicy.choices,
        initial=TrafficPolicy.FUP,
        required=False,
        help_text=_("A speed cut applies with the speeds after the quota; a charge needs a price per GB."),
    )
    traffic_direction = forms.ChoiceField(
        label=_("Traffic counted"), choices=TrafficDirection.choices, initial=TrafficDirection.BOTH, required=False
    )
    fup_download_mbps = speed_field(_("Download after the quota, Mbit/s"))
    fup_upload_mbps = speed_field(_("Upload after the quota, Mbit/s"))

    freeze_policy = forms.ModelChoiceField(
        label=_("Freeze policy"), queryset=FreezePolicy.objects.all(), required=False, empty_label=_("No freezes")
    )
    promised_payment_policy = forms.ModelChoiceField(
        label=_("Promised payment policy"),
        queryset=PromisedPaymentPolicy.objects.all(),
        required=False,
        empty_label=_("No promised payments"),
    )
    switchable_to = forms.ModelMultipleChoiceField(
        label=_("Subscribers may switch to"),
        queryset=Plan.objects.filter(is_archived=False),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )
    turbos = TurboChoiceField(
        label=_("Turbo options"),
        queryset=Turbo.objects.filter(is_active=True).order_by("price", "name"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )

    SPEEDS = {
        "download_kbps": "download_mbps",
        "upload_kbps": "upload_mbps",
        "burst_download_kbps": "burst_download_mbps",
        "burst_upload_kbps": "burst_upload_mbps",
        "night_download_kbps": "night_download_mbps",
        "night_upload_kbps": "night_upload_mbps",
        "fup_download_kbps": "fup_download_mbps",
        "fup_upload_kbps": "fup_upload_mbps",
    }
    PLAIN = (
        "code",
        "name",
        "service",
        "description",
        "is_public",
        "charge_mode",
        "period_anchor",
        "daily_pricing",
        "charge_only_if_online",
        "proration_unit",
        "burst_seconds",
        "night_starts_at",
        "night_ends_at",
        "overage_price_per_gb",
        "overage_rounding",
        "traffic_policy",
        "traffic_direction",
        "freeze_policy",
        "promised_payment_policy",
        "monthly_fee",
        "daily_fee",
        "valid_from",
        "unit_price",
        "time_unit",
        "free_minutes",
    )
    # Model field (as the action's errors name it) → the form field that shows the error.
    FIELD_MAP = {**SPEEDS, "included_bytes": "included_gb"}

    def clean(self):
        data = super().clean()
        # A plan that charges past the included traffic with no price or no volume would never charge: refused
        # here rather than found out at the month's end.
        if data.get("traffic_policy") in (TrafficPolicy.OVERAGE, TrafficPolicy.BOTH):
            if not data.get("overage_price_per_gb"):
                self.add_error(
                    "overage_price_per_gb",
                    forms.ValidationError(_("Give the price per GB the plan charges."), code="required"),
                )
            if data.get("included_gb") is None:
                self.add_error(
                    "included_gb",
                    forms.ValidationError(
                        _("Give the included traffic past which the plan charges (0 for none)."), code="required"
                    ),
                )
        return data

    def plan_values(self) -> dict:
        """Keyword arguments of ``do_create_plan``, in the model's units."""
        data = self.cleaned_data
        values = {name: data[name] for name in self.PLAIN}
        values.update({model: mbps_to_kbps(data[form]) for model, form in self.SPEEDS.items()})
        values["download_kbps"] = values["download_kbps"] or 0
        values["upload_kbps"] = values["upload_kbps"] or 0
        values["included_bytes"] = gb_to_bytes(data["included_gb"])
        values["traffic_policy"] = data["traffic_policy"] or TrafficPolicy.FUP
        values["traffic_direction"] = data["traffic_direction"] or TrafficDirection.BOTH
        values["activation_fee"] = data["activation_fee"] if data["activation_fee"] is not None else Decimal("0.00")
        values["switchable_to"] = list(data["switchable_to"])
        values["turbos"] = list(data["turbos"])
        values["description"] = values["description"] or ""
        values["minimum_session_charge"] = data["minimum_session_charge"] or Decimal("0.00")
        values["time_unit"] = values["time_unit"] or TimeUnit.MINUTE
        values["free_minutes"] = values["free_minutes"] or 0
        return values


class TurboForm(ConsoleForm):
    """Create or edit a turbo option; editing changes only later purchases (a bought turbo keeps its terms)."""

    code = forms.SlugField(label=_("Code"), max_length=50, help_text=_("Latin letters, digits and dashes."))
    name = forms.CharField(label=_("Name"), max_length=100)
    # A turbo with no speed is no turbo: the model refuses 0 kbit/s, the form says so in Mbit/s first.
    download_mbps = speed_field(_("Download, Mbit/s"), required=True, min_value=Decimal("0.001"))
    upload_mbps = speed_field(_("Upload, Mbit/s"), required=True, min_value=Decimal("0.001"))
    hours = forms.IntegerField(
        label=_("Hours"),
        min_value=1,
        max_value=MAX_TURBO_HOURS,
        help_text=_("How long the speed lasts once bought, up to a week."),
    )
    price = money_field(_("Price"))
    is_active = forms.BooleanField(
        label=_("Offered"), required=False, initial=True, help_text=_("Off: no new purchases; bought ones run out.")
    )
    plans = forms.ModelMultipleChoiceField(
        label=_("Plans offering it"),
        queryset=Plan.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
    )

    SPEEDS = {"download_kbps": "download_mbps", "upload_kbps": "upload_mbps"}
    PLAIN = ("code", "name", "hours", "price", "is_active", "plans")
    # Model field (as the action's errors name it) → the form field that shows the error.
    FIELD_MAP = SPEEDS

    def __init__(self, *args, turbo: Turbo | None = None, **kwargs):
        if turbo is not None:
            kwargs.setdefault(
                "initial",
                {
                    **{name: getattr(turbo, name) for name in ("code", "name", "hours", "price", "is_active")},
                    **{form: kbps_to_mbps(getattr(turbo, model)) for model, form in self.SPEEDS.items()},
                    "plans": list(turbo.plans.values_list("pk", flat=True)),
                },
            )
        super().__init__(*args, **kwargs)
        # Archived plans are not listed, except those offering the option already: saving keeps them.
        offering = Q(turbos=turbo) if turbo is not None else Q(pk__in=[])
        self.fields["plans"].queryset = Plan.objects.filter(Q(is_archived=False) | offering).distinct().order_by("name")

    def turbo_values(self) -> dict:
        """Keyword arguments of ``do_create_turbo`` and ``do_update_turbo``, in the model's units."""
        data = self.cleaned_data
        values = {name: data[name] for name in self.PLAIN}
        values.update({model: mbps_to_kbps(data[form]) for model, form in self.SPEEDS.items()})
        values["plans"] = list(data["plans"])
        return values
