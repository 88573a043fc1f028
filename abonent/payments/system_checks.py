"""System checks of the payments settings (``abonent check``, and every start of ``abonent web``/``worker``).

A fiscal setting that is wrong does not lose money, but every receipt fails until it is fixed, and 54-FZ
counts a receipt issued late as one not issued: say so at start, not at the first payment.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from abonent.core.company import fiscal_inn_mismatch, tax_settings_from_environment

from .fiscal import FiscalError, registered
from .fiscal.content import VAT_RATES, company_block, vat_rate_rows


@register()
def check_fiscal_settings(app_configs, **kwargs):
    provider = (settings.ABONENT_FISCAL_PROVIDER or "none").strip().lower()
    if provider not in registered():
        return [
            Error(
                f"ABONENT_FISCAL_PROVIDER is {provider!r}",
                hint=f"Use one of: {', '.join(registered())}.",
                id="payments.E001",
            )
        ]
    problems = []
    vat = (settings.ABONENT_FISCAL_VAT or "auto").strip().lower()
    if vat not in ("auto", "none", *VAT_RATES):
        problems.append(
            Error(f"ABONENT_FISCAL_VAT is {vat!r}", hint="auto, none or an ATOL VAT code", id="payments.E002")
        )
    try:
        vat_rate_rows()
    except FiscalError as exc:
        problems.append(
            Error(str(exc), hint="DATE:RATE,DATE:RATE, e.g. 2019-01-01:20,2026-01-01:22", id="payments.E003")
        )
    if provider == "none":
        return problems
    missing = [
        name
        for name in ("ABONENT_ATOL_LOGIN", "ABONENT_ATOL_PASSWORD", "ABONENT_ATOL_GROUP_CODE")
        if provider == "atol" and not getattr(settings, name)
    ]
    if missing:
        problems.append(
            Warning(
                f"{', '.join(missing)} not set: every receipt will fail",
                hint="Copy them from the ATOL Online cabinet (docs/payments.md, fiscal receipts).",
                id="payments.W001",
            )
        )
    try:
        # The settings alone: checks run before the database is migrated (the wizard's tax step, when there is one,
        # stands in for ABONENT_FISCAL_SNO at run time).
        company_block(tax_settings_from_environment())
    except FiscalError as exc:
        problems.append(Warning(f"{exc}: every receipt will fail", id="payments.W002"))
    return problems


@register(Tags.database)
def check_fiscal_inn_matches_the_company(app_configs, databases=None, **kwargs):
    """Receipts carry ABONENT_FISCAL_INN (the till's registration), invoices the wizard's INN: warn when they
    differ. Reads the database, so, as Django's database checks, only when asked for one
    (``abonent check --database default``; ``migrate`` does); the wizard and the gateways page say it too."""
    if not databases:
        return []
    try:
        mismatch = fiscal_inn_mismatch()
    except DatabaseError:
        return []
    if mismatch is None:
        return []
    company, fiscal = mismatch
    return [
        Warning(
            f"ABONENT_FISCAL_INN is {fiscal}, the company's INN (set-up wizard) is {company}: receipts and invoices"
            " name different INNs",
            hint="Correct the INN in the wizard's company step (/staff/setup/company/) or ABONENT_FISCAL_INN.",
            id="payments.W003",
        )
    ]
