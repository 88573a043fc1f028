"""Signals sent inside a payment's transaction, for apps whose records must commit (or roll back) with it; events
after commit are ``core.events``."""

from django.dispatch import Signal

# A refund was recorded: part or all of a credited payment left the subscriber's account. Sent with
# ``payment_id`` and ``refund_id`` after ``refunded_amount`` grew, under the subscriber's account lock.
refund_recorded = Signal()
