"""Fiscal receipts through an online cash-register service, behind one small interface (``base.FiscalProvider``):
ATOL Online v5 first, ``none`` for installations without a cash register. ``provider()`` is the configured one."""

from django.conf import settings

from .atol import AtolProvider
from .base import CallbackRejected, FiscalError, FiscalProvider, FiscalReport, get, register, registered
from .none import NoFiscalProvider

register("none", NoFiscalProvider)
register("atol", AtolProvider)


def provider() -> FiscalProvider:
    return get((settings.ABONENT_FISCAL_PROVIDER or "none").strip().lower())


__all__ = [
    "CallbackRejected",
    "FiscalError",
    "FiscalProvider",
    "FiscalReport",
    "get",
    "provider",
    "register",
    "registered",
]
