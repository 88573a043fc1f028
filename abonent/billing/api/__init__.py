"""REST API for billing: a subscriber's balance, ledger and subscriptions, and what staff do with them. One module per
concern: ``accounts``, ``subscriptions``, ``charges``, ``usage``; ``schemas`` holds the bodies, ``common`` what they
share.

Money is a string with two decimals (see ``catalog.api.Money``); amounts sent are strings too. An action's
refusal is a 422 whose ``fields`` carry its code (``plan_not_offered``, ``amount_zero``…), named as the
request names them (``plan_id``, not the model's ``plan``).
"""

from . import accounts, charges, subscriptions, time, usage  # noqa: F401  (each registers its endpoints on the router)
from .common import router

__all__ = ["router"]
