"""Forms parse and display; validation of substance lives in the actions, whose errors the forms show."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm
from abonent.core.models import Branch
from abonent.staff.permissions import allowed_branch_ids

from .extensions import list_extensions_for
from .models import (
    AddressKind,
    ConnectionEventKind,
    ContactKind,
    EquipmentKind,
    EquipmentOwnership,
    SubscriberGroup,
    SubscriberKind,
    SubscriberStatus,
)

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def branch_choices(user):
    qs = Branch.objects.filter(is_active=True)
    ids = allowed_branch_ids(user)
    return qs if ids is None else qs.filter(pk__in=ids)


class SubscriberFilterForm(ConsoleForm):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        widget=forms.TextInput(
            attrs={
                "placeholder": _("Account, name, phone, address, MAC…"),
                "autofocus": True,
                "type": "search",
                "autocomplete": "off",
            }
        ),
    )
    branch = forms.ModelChoiceField(
        label=_("Branch"), queryset=Branch.objects.none(), required=False, empty_label=_("All branches")
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *SubscriberStatus.choices]
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("Any kind")), *SubscriberKind.choices])
    group = forms.ModelChoiceField(
        label=_("Group"), queryset=SubscriberGroup.objects.all(), required=False, empty_label=_("Any group")
    )
    # The API's limit (subscribers.api.SearchParams): a page past it is never a real list's, and one past 64 bits
    # reached the database as an OFFSET it cannot take (a 500). An invalid page ("0", "abc", a tampered link) is
    # the first page of the same search, without an error: ``clean_page``.
    page = forms.CharField(required=False, widget=forms.HiddenInput)
    MAX_PAGE = 10000

    def __init__(self, *args, user, **kwargs):
        # The filters other apps add (dunning's access state), before ConsoleForm styles the widgets.
        self.extension_names = []
        extra = {}
        for extension in list_extensions_for(user):
            extra[extension.name] = forms.ChoiceField(
                label=extension.label, required=False, choices=[("", extension.any_label), *extension.choices()]
            )
            self.extension_names.append(extension.name)
        self.base_fields = {**self.base_fields, **extra}
        super().__init__(*args, **kwargs)
        self.fields["branch"].queryset = branch_choices(user)

    def clean_page(self) -> int:
        page = self.cleaned_data.get("page") or ""
        number = int(page) if page.isascii() and page.isdigit() and len(page) <= len(str(self.MAX_PAGE)) else 0
        return number if 1 <= number <= self.MAX_PAGE else 1

    def extension_fields(self):
        return [self[name] for name in self.extension_names]

    def valid_data(self) -> dict:
        """The fields that cleaned, each on its own: a tampered filter is left out (its error shown next to it)
        and the others, the query above all, still apply. Nothing for an unbound form."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return self.cleaned_data

    def extra_filters(self) -> tuple[tuple[str, str], ...]:
        data = self.valid_data()
        return tuple((name, data[name]) for name in self.extension_names if data.get(name))


class ProfileFieldsMixin(ConsoleForm):
    kind = forms.ChoiceField(
        label=_("Kind"), choices=SubscriberKind.choices, initial=SubscriberKind.INDIVIDUAL, widget=forms.RadioSelect
    )
    branch_id = forms.ModelChoiceField(label=_("Branch"), queryset=Branch.objects.none())
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    middle_name = forms.CharField(label=_("Patronymic"), max_length=100, required=False)
    birth_date = forms.DateField(label=_("Date of birth"), required=False, widget=DATE_WIDGET)
    passport_series = forms.CharField(label=_("Passport series"), max_length=5, required=False)
    passport_number = forms.CharField(label=_("Passport number"), max_length=7, required=False)
    passport_issued_by = forms.CharField(label=_("Issued by"), max_length=255, required=False)
    passport_issued_on = forms.DateField(label=_("Issued on"), required=False, widget=DATE_WIDGET)
    organization_name = forms.CharField(label=_("Organisation name"), max_length=255, required=False)
    inn = forms.CharField(label=_("INN"), max_length=12, required=False)
    kpp = forms.CharField(label=_("KPP"), max_length=9, required=False)
    # Longer than the column: the action says what is wrong with 21 digits, in its own words.
    legacy_account = forms.CharField(
        label=_("Old account number"),
        max_length=40,
        required=False,
        help_text=_("The number in the previous billing system, exactly as on its receipts (leading zeros too)."),
    )
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"), queryset=SubscriberGroup.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    consent_personal_data = forms.BooleanField(label=_("Consents to personal data processing"), required=False)
    consent_marketing = forms.BooleanField(label=_("Agrees to receive marketing messages"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["branch_id"].queryset = branch_choices(user)
        branches = list(self.fields["branch_id"].queryset[:2])
        if len(branches) == 1:
            self.fields["branch_id"].initial = branches[0].pk

    def profile_values(self) -> dict:
        data = self.cleaned_data
        return {
            "kind": data["kind"],
            "branch_id": data["branch_id"].pk,
            **{
                name: data[name]
                for name in (
                    "last_name",
                    "first_name",
                    "middle_name",
                    "birth_date",
                    "passport_series",
                    "passport_number",
                    "passport_issued_by",
                    "passport_issued_on",
                    "organization_name",
                    "inn",
                    "kpp",
                )
            },
            "legacy_account": data["legacy_account"],
            "consent_personal_data": data["consent_personal_data"],
            "consent_marketing": data["consent_marketing"],
            "group_ids": [g.pk for g in data["groups"]],
        }


class SubscriberCreateForm(ProfileFieldsMixin):
    account_number = forms.CharField(
        label=_("Account number"),
        max_length=20,
        required=False,
        help_text=_("Leave empty to assign the next number. Fill in only when moving an existing account."),
    )
    contract_number = forms.CharField(
        label=_("Contract number"), max_length=50, required=False, help_text=_("Leave empty to use the account number.")
    )
    contract_signed_on = forms.DateField(label=_("Contract date"), required=False, widget=DATE_WIDGET)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "placeholder": "+7 900 000-00-00"}),
    )
    email = forms.CharField(
        label=_("Email"), max_length=254, required=False, widget=forms.TextInput(attrs={"type": "email"})
    )
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    street = forms.CharField(label=_("Street"), max_length=150, required=False)
    house = forms.CharField(label=_("House"), max_length=20, required=False)
    building = forms.CharField(label=_("Building"), max_length=20, required=False)
    apartment = forms.CharField(label=_("Apartment"), max_length=20, required=False)

    # Where the action reports an error on a nested item, show it on the flat field it came from.
    FIELD_MAP = {
        "contacts.0.value": "phone",
        "addresses.0.city": "city",
        "addresses.0.house": "house",
        "addresses.0.street": "street",
    }


class SubscriberEditForm(ProfileFieldsMixin):
    reason = forms.CharField(label=_("Reason for the change"), max_length=255, required=False)


class CloseForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason for closing"), widget=forms.Textarea(attrs={"rows": 2}))


class ContactForm(ConsoleForm):
    kind = forms.ChoiceField(label=_("Kind"), choices=ContactKind.choices)
    value = forms.CharField(label=_("Phone or email"), max_length=254)
    comment = forms.CharField(label=_("Comment"), max_length=100, required=False)
    is_primary = forms.BooleanField(label=_("Primary"), required=False)


class AddressForm(ConsoleForm):
    kind = forms.ChoiceField(label=_("Kind"), choices=AddressKind.choices)
    postal_code = forms.CharField(label=_("Postal code"), max_length=10, required=False)
    city = forms.CharField(label=_("City"), max_length=100)
    street = forms.CharField(label=_("Street"), max_length=150, required=False)
    house = forms.CharField(label=_("House"), max_length=20)
    building = forms.CharField(label=_("Building"), max_length=20, required=False)
    apartment = forms.CharField(label=_("Apartment"), max_length=20, required=False)
    entrance = forms.CharField(label=_("Entrance"), max_length=10, required=False)
    floor = forms.CharField(label=_("Floor"), max_length=10, required=False)
    comment = forms.CharField(label=_("Comment"), max_length=255, required=False)


class NoteForm(ConsoleForm):
    text = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}))
    is_pinned = forms.BooleanField(label=_("Pin"), required=False)


class ConnectionEventForm(ConsoleForm):
    kind = forms.ChoiceField(label=_("Event"), choices=ConnectionEventKind.choices)
    happened_on = forms.DateField(label=_("Date"), widget=DATE_WIDGET)
    comment = forms.CharField(label=_("Comment"), max_length=255, required=False)


class EquipmentAssignForm(ConsoleForm):
    """Install a device: an existing one found by serial or MAC, or a new one registered on the spot."""

    serial_or_mac = forms.CharField(label=_("Serial number or MAC"), max_length=100)
    ownership = forms.ChoiceField(label=_("Ownership"), choices=EquipmentOwnership.choices)
    kind = forms.ChoiceField(label=_("Type (for a new device)"), choices=EquipmentKind.choices, required=False)
    vendor = forms.CharField(label=_("Vendor (for a new device)"), max_length=100, required=False)
    model = forms.CharField(label=_("Model (for a new device)"), max_length=100, required=False)
    mac_address = forms.CharField(label=_("MAC (for a new device)"), max_length=17, required=False)
