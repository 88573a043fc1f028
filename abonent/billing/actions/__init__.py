"""Writes of billing, one module per concern. Each action is atomic, locks what it checks, writes the ledger and
its business record together, audits, and emits its event after commit. ``acting_user=None`` means the system
itself (the scheduler, an event handler); views and the API always pass the person.

- ``subscriptions``: activation and termination;
- ``plan_changes``: upgrades now, downgrades at the next period, cancelling a scheduled one;
- ``freezes``: voluntary pauses and their end;
- ``turbo``: paid speed boosts;
- ``time_packages``: prepaid time for time plans;
- ``adjustments``: manual adjustments, one-off charges, credit limits;
- ``reversals``: an adjustment undone, one charge given back whole or for some days;
- ``payments``: payments credited to the ledger and promised payments;
- ``online``: days online, from RADIUS accounting.

The ``do_*`` names are imported here, so callers write ``from abonent.billing import actions``.
"""

from .adjustments import charged_total, do_adjust_balance, do_charge_one_off, do_set_credit_limit
from .freezes import (
    do_finish_due_freezes,
    do_freeze_subscription,
    do_unfreeze_subscription,
    freeze_days_used,
    freeze_fee,
)
from .online import do_record_online_days
from .payments import (
    do_expire_promised_payments,
    do_post_payment,
    do_post_refund,
    do_reopen_promised_payment,
    do_take_promised_payment,
)
from .plan_changes import do_cancel_pending_plan_change, do_change_plan, preview_change_plan
from .reversals import REVERSIBLE_KINDS, do_reverse_charge, do_reverse_transaction
from .subscriptions import do_activate_subscription, do_terminate_subscription
from .time_packages import do_buy_time_package
from .turbo import do_activate_turbo, do_end_turbo, do_finish_due_turbos

__all__ = [
    "REVERSIBLE_KINDS",
    "charged_total",
    "do_activate_subscription",
    "do_activate_turbo",
    "do_adjust_balance",
    "do_buy_time_package",
    "do_cancel_pending_plan_change",
    "do_change_plan",
    "do_charge_one_off",
    "do_end_turbo",
    "do_expire_promised_payments",
    "do_finish_due_freezes",
    "do_finish_due_turbos",
    "do_freeze_subscription",
    "do_post_payment",
    "do_post_refund",
    "do_record_online_days",
    "do_reopen_promised_payment",
    "do_reverse_charge",
    "do_reverse_transaction",
    "do_set_credit_limit",
    "do_take_promised_payment",
    "do_terminate_subscription",
    "do_unfreeze_subscription",
    "freeze_days_used",
    "freeze_fee",
    "preview_change_plan",
]
