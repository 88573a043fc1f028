"""The wizard's forms: what each step asks, parsed. The requisites' check digits are the model's
(``CompanyProfile.clean``), reached through the action, so the form and the admin agree on what is valid."""

from __future__ import annotations

import secrets
import string
import zoneinfo
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from abonent.catalog.forms import mbps_to_kbps, money_field, speed_field
from abonent.core.forms import StyledForm
from abonent.core.models import TaxSystem, VatMode
from abonent.network.actions import MIN_SECRET_LENGTH
from abonent.network.models import Vendor, validate_nas_name

# Requisites typed or pasted with spaces ("7707 083 893") are the same digits.
DIGIT_FIELDS = ("inn", "kpp", "ogrn", "bik", "account", "corr_account")
SECRET_ALPHABET = string.ascii_letters + string.digits
# Letters, digits, "-", "_" and ".": the secret goes unquoted into accel-ppp's comma-separated server line and
# Cisco's key, where a comma, a space or a quote would end it.
SECRET_VALIDATOR = RegexValidator(
    r"\A[A-Za-z0-9._-]+\Z", _("Use Latin letters, digits, '-', '_' and '.' only."), code="secret_characters"
)


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(24))


class CompanyForm(StyledForm):
    name = forms.CharField(
        label=_("Legal name"), max_length=255, help_text=_("As registered: ООО «Связь», ИП Петров П. П.")
    )
    inn = forms.CharField(label=_("INN"), max_length=20)
    kpp = forms.CharField(label=_("KPP"), max_length=20, required=False, help_text=_("Organisations only."))
    ogrn = forms.CharField(label=_("OGRN / OGRNIP"), max_length=20, required=False)
    address = forms.CharField(label=_("Legal address"), max_length=500)
    phone = forms.CharField(
        label=_("Support phone"), max_length=32, required=False, help_text=_("The number subscribers are told to call.")
    )
    director = forms.CharField(label=_("Director"), max_length=150, required=False)
    accountant = forms.CharField(label=_("Chief accountant"), max_length=150, required=False)
    bank = forms.CharField(label=_("Bank"), max_length=255, required=False)
    bik = forms.CharField(label=_("BIK"), max_length=20, required=False)
    account = forms.CharField(label=_("Settlement account"), max_length=30, required=False)
    corr_account = forms.CharField(label=_("Correspondent account"), max_length=30, required=False)

    REQUISITES = ("name", "inn", "kpp", "ogrn", "address", "phone", "director", "accountant")
    BANK = ("bank", "bik", "account", "corr_account")

    def clean(self):
        data = super().clean()
        for name in DIGIT_FIELDS:
            if data.get(name):
                data[name] = "".join(data[name].split())
        return data


class TaxesForm(StyledForm):
    tax_system = forms.ChoiceField(label=_("Tax system"), choices=TaxSystem.choices, widget=forms.RadioSelect)
    vat_mode = forms.ChoiceField(label=_("VAT"), choices=VatMode.choices, widget=forms.RadioSelect)


class RegionForm(StyledForm):
    currency = forms.CharField(label=_("Currency"), min_length=3, max_length=3, help_text=_("Three letters: RUB."))
    time_zone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        help_text=_("Billing days start at midnight here. A branch in another zone can have its own."),
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()


def time_zone_names() -> list[str]:
    return sorted(zoneinfo.available_timezones())


class BranchForm(StyledForm):
    name = forms.CharField(label=_("Name"), max_length=100)
    code = forms.SlugField(label=_("Code"), max_length=32, help_text=_("Latin letters, digits and dashes."))
    time_zone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        required=False,
        help_text=_("Empty: the installation's."),
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )

    def clean_code(self):
        # Codes are lower case: "tver" and "TVER" would be two branches told apart by case only.
        return self.cleaned_data["code"].lower()


class NasForm(StyledForm):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        validators=[validate_nas_name],
        help_text=_("Also its NAS-Identifier: bras1."),
    )
    ip_address = forms.GenericIPAddressField(
        label=_("The NAS's address"), help_text=_("The address its RADIUS requests come from.")
    )
    vendor = forms.ChoiceField(label=_("Vendor"), choices=Vendor.choices)
    secret = forms.CharField(
        label=_("Shared secret"),
        min_length=MIN_SECRET_LENGTH,
        max_length=128,
        validators=[SECRET_VALIDATOR],
        help_text=_("Made up for you; shown once more below with the lines, then never again."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    interim_interval = forms.IntegerField(
        label=_("Interim update interval, s"), min_value=60, max_value=3600, initial=300
    )
    radius_address = forms.GenericIPAddressField(
        label=_("Abonent's address as the NAS sees it"),
        help_text=_("Where the NAS sends RADIUS requests: this server's address on the NAS's network."),
    )


class PlanForm(StyledForm):
    name = forms.CharField(label=_("Name"), max_length=150)
    code = forms.SlugField(label=_("Code"), max_length=50, help_text=_("Latin letters, digits and dashes."))
    monthly_fee = money_field(_("Monthly fee"), min_value=Decimal("0"))
    download_mbps = speed_field(_("Download, Mbit/s"), required=True, min_value=Decimal("0.001"))
    upload_mbps = speed_field(_("Upload, Mbit/s"), required=True, min_value=Decimal("0.001"))

    def plan_values(self) -> dict:
        data = self.cleaned_data
        return {
            "code": data["code"],
            "name": data["name"],
            "monthly_fee": data["monthly_fee"],
            "download_kbps": mbps_to_kbps(data["download_mbps"]),
            "upload_kbps": mbps_to_kbps(data["upload_mbps"]),
        }
