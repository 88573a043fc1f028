"""The bonuses app's ledger accounts and the value of a point."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _

from abonent.billing.models import AccountKind, LedgerAccount
from abonent.core import clock
from abonent.core.money import quantize

LIABILITY = "bonus"
EXPENSE = "revenue:bonus"


def _account(code: str, kind: str, name: str) -> LedgerAccount:
    account, _created = LedgerAccount.objects.get_or_create(
        code=code, defaults={"kind": kind, "name": name, "created_at": clock.now()}
    )
    return account


def liability_account() -> LedgerAccount:
    """Points earned and not yet spent or expired: what the ISP owes its subscribers in service."""
    return _account(LIABILITY, AccountKind.BONUS, _("Bonus liability"))


def expense_account() -> LedgerAccount:
    """Points granted, as a contra-revenue account (a discount given): debited on accrual, credited back on expiry."""
    return _account(EXPENSE, AccountKind.REVENUE, _("Bonuses granted"))


def point_value() -> Decimal:
    """Money one point is worth (``ABONENT_BONUS_POINT_VALUE``, 1.00 by default: 1 point = 1 ₽)."""
    return quantize(settings.ABONENT_BONUS_POINT_VALUE)


def money_of(points: Decimal) -> Decimal:
    return quantize(points * point_value())
