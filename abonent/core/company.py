"""The ISP's own details as the rest of the system reads them: the database's ``CompanyProfile`` (the first-run
wizard writes it), else the ``ABONENT_COMPANY_*`` settings an installation made before the wizard used.

The profile wins as a whole, not field by field: an entrepreneur who left the KPP empty in the wizard must not
print a KPP left over in the environment. Taxes likewise: the profile's tax system and VAT once the wizard's tax
step set them, else ``ABONENT_FISCAL_SNO`` / ``ABONENT_FISCAL_VAT``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.conf import settings

from .models import CompanyProfile


@dataclass(frozen=True)
class CompanyDetails:
    """The seller as documents print it; every value a string, empty when unknown."""

    name: str
    inn: str
    kpp: str
    ogrn: str
    address: str
    phone: str
    bank: str
    bik: str
    account: str
    corr_account: str
    director: str
    accountant: str
    # Where the values came from: "database" (the wizard) or "settings".
    source: str

    def as_dict(self) -> dict[str, str]:
        values = asdict(self)
        values.pop("source")
        return values


@dataclass(frozen=True)
class TaxSettings:
    """The tax system (ATOL ``sno`` code) and the VAT mode (``auto``, ``none`` or an ATOL VAT code)."""

    tax_system: str
    vat_mode: str


def company_profile() -> CompanyProfile | None:
    return CompanyProfile.objects.filter(pk=CompanyProfile.SINGLETON_ID).first()


def _from_settings() -> CompanyDetails:
    s = settings
    return CompanyDetails(
        name=s.ABONENT_COMPANY_NAME,
        inn=s.ABONENT_COMPANY_INN or getattr(s, "ABONENT_FISCAL_INN", ""),
        kpp=s.ABONENT_COMPANY_KPP,
        ogrn=s.ABONENT_COMPANY_OGRN,
        address=s.ABONENT_COMPANY_ADDRESS,
        phone=s.ABONENT_COMPANY_PHONE,
        bank=s.ABONENT_COMPANY_BANK,
        bik=s.ABONENT_COMPANY_BIK,
        account=s.ABONENT_COMPANY_ACCOUNT,
        corr_account=s.ABONENT_COMPANY_CORR_ACCOUNT,
        director=s.ABONENT_COMPANY_DIRECTOR,
        accountant=s.ABONENT_COMPANY_ACCOUNTANT,
        source="settings",
    )


def company_details(profile: CompanyProfile | None = None) -> CompanyDetails:
    """The company's details now: the profile when the wizard saved one, else the settings."""
    profile = profile if profile is not None else company_profile()
    if profile is None or not profile.name:
        return _from_settings()
    return CompanyDetails(
        name=profile.name,
        inn=profile.inn,
        kpp=profile.kpp,
        ogrn=profile.ogrn,
        address=profile.address,
        phone=profile.phone,
        bank=profile.bank,
        bik=profile.bik,
        account=profile.account,
        corr_account=profile.corr_account,
        director=profile.director,
        accountant=profile.accountant,
        source="database",
    )


def tax_settings_from_environment() -> TaxSettings:
    return TaxSettings(
        tax_system=(settings.ABONENT_FISCAL_SNO or "").strip(), vat_mode=(settings.ABONENT_FISCAL_VAT or "auto")
    )


def tax_settings(profile: CompanyProfile | None = None) -> TaxSettings:
    """The profile's tax system and VAT once the wizard set them, else the settings'."""
    profile = profile if profile is not None else company_profile()
    if profile is not None and profile.tax_system:
        return TaxSettings(tax_system=profile.tax_system, vat_mode=profile.vat_mode or "auto")
    return tax_settings_from_environment()


def name_from_settings_is_placeholder() -> bool:
    """The environment names no company (empty, or the shipped placeholder): an installation set up through the
    first-run wizard, not through ``ABONENT_COMPANY_*``."""
    return settings.ABONENT_COMPANY_NAME in ("", settings.ABONENT_COMPANY_NAME_PLACEHOLDER)


def fiscal_inn_mismatch(profile: CompanyProfile | None = None) -> tuple[str, str] | None:
    """``(the wizard's INN, ABONENT_FISCAL_INN)`` when both are set and differ, else ``None``.

    Receipts keep ABONENT_FISCAL_INN: the till is registered with the tax service under that INN, and a receipt
    naming another is refused by the fiscal data operator. Invoices and acts print the wizard's. Two INNs for one
    company is an error in one of them, which the wizard, ``abonent check`` and the gateways page point out."""
    fiscal = (getattr(settings, "ABONENT_FISCAL_INN", "") or "").strip()
    profile = profile if profile is not None else company_profile()
    company = profile.inn.strip() if profile is not None else ""
    if fiscal and company and fiscal != company:
        return company, fiscal
    return None
