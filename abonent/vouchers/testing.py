"""Helpers for tests of prepaid cards and bonuses (used by tests/vouchers and tests/bonuses)."""

from decimal import Decimal

from abonent.billing.models import LedgerAccount, Posting
from abonent.core import secrets

from .actions import serial_of
from .codes import printed
from .models import Voucher


def code_of(card: Voucher) -> str:
    """The printed code (what a buyer types), read back as the sheet reads it."""
    return printed(secrets.decrypt(card.code_encrypted))


def card(series, number: int) -> Voucher:
    return Voucher.objects.get(serial=serial_of(series, number))


def balance_of(code: str) -> Decimal:
    """A system account's balance: the sum of its postings (system accounts keep no cached balance)."""
    account = LedgerAccount.objects.filter(code=code).first()
    if account is None:
        return Decimal("0.00")
    return sum(Posting.objects.filter(account=account).values_list("amount", flat=True), Decimal("0.00"))


def balance(subscriber) -> Decimal:
    """A subscriber's balance, 0 before the first posting made its account."""
    account = LedgerAccount.objects.filter(subscriber=subscriber).first()
    return account.balance if account is not None else Decimal("0.00")
