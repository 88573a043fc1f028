"""The vouchers app's ledger accounts: the cards' liability, breakage revenue, dealers' commission and cash."""

from __future__ import annotations

from django.utils.translation import gettext as _

from abonent.billing.models import AccountKind, LedgerAccount
from abonent.core import clock

LIABILITY = "vouchers"
BREAKAGE = "revenue:voucher_breakage"
COMMISSION = "revenue:voucher_commission"


def _account(code: str, kind: str, name: str) -> LedgerAccount:
    account, _created = LedgerAccount.objects.get_or_create(
        code=code, defaults={"kind": kind, "name": name, "created_at": clock.now()}
    )
    return account


def liability_account() -> LedgerAccount:
    """Sold cards not yet activated: money held for service still owed."""
    return _account(LIABILITY, AccountKind.VOUCHER, _("Prepaid cards liability"))


def breakage_account() -> LedgerAccount:
    """Sold cards that expired unused: the liability recognised as revenue."""
    return _account(BREAKAGE, AccountKind.REVENUE, _("Revenue: expired prepaid cards"))


def commission_account() -> LedgerAccount:
    """Dealers' commission: a contra-revenue account (its balance is debit), the discount on cards sold."""
    return _account(COMMISSION, AccountKind.REVENUE, _("Dealers' commission on prepaid cards"))


def dealer_cash_account(dealer) -> LedgerAccount:
    """What a dealer paid (or owes) for the cards it took: ``cash:dealer:<id>``."""
    return _account(f"cash:dealer:{dealer.pk}", AccountKind.CASH, _("Dealer") + f": {dealer.name}")
