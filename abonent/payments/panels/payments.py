"""The payments panel of the subscriber card (the last payments, and for a cashier the "Take payment" form, which
posts to the cash desk, which prints the receipt), and the sections other parts add to a payment's card."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.core import clock
from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.models import SubscriberStatus
from abonent.subscribers.panels import Panel, register_panel

from .. import selectors
from ..actions.cashdesk import is_day_closed
from ..cards import register_payment_section

RECENT_PAYMENTS = 10


def payments_context(request, subscriber, **_ignored) -> dict:
    from ..views.cashdesk import take_form_for

    can_take = (
        has_perm(request.user, Perm.PAYMENT_TAKE)
        and subscriber.status != SubscriberStatus.CLOSED
        and not is_day_closed(request.user.pk, clock.today())
    )
    return {
        "payments": selectors.subscriber_payments(subscriber, limit=RECENT_PAYMENTS),
        "take_form": take_form_for(subscriber) if can_take else None,
    }


PANEL = register_panel(
    Panel("payments", _("Payments"), "payments/panels/payments.html", 8, payments_context, Perm.PAYMENT_VIEW)
)


def _receipt_section(request, payment) -> str:
    from ..views.receipts import payment_receipt_section

    return payment_receipt_section(request, payment)


# The fiscal receipt's section of a payment's card (payments.cards).
register_payment_section(_receipt_section)

# The card's history names the channels a payment came through (billing.payment_posted keeps the code).
register_action_labels(
    {
        "payments.received": _("Payment received"),
        "payments.assigned": _("Payment assigned to a subscriber"),
        "payments.suspense": _("Payment put in suspense"),
        "payments.cancelled": _("Payment cancelled"),
        "payments.refunded": _("Payment refunded"),
        "payments.returned": _("Suspense payment returned"),
        "payments.conflict": _("Payment repeated with other details"),
        "payments.conflict_resolved": _("Payment conflict settled"),
        "payments.cash_day_closed": _("Cash day closed"),
        "payments.statement_imported": _("Bank statement imported"),
        "payments.checkout_started": _("Online payment started"),
        "payments.checkout_failed": _("Online payment failed"),
        "payments.gateway_refund_unrecorded": _("Gateway refund not recorded"),
        "payments.receipt_failed": _("Fiscal receipt failed"),
        "payments.receipt_retried": _("Fiscal receipt retried"),
        "payments.receipt_dropped": _("Fiscal receipt dropped"),
        "payments.agent_created": _("Payment agent added"),
        "payments.agent_changed": _("Payment agent changed"),
        "payments.agent_secret_rotated": _("Payment agent's secret replaced"),
    },
    values={
        "channel": {
            "cash": _("cash desk"),
            "bank": _("bank statement"),
            "yookassa": _("YooKassa"),
            "portal": _("portal"),
            "staff": _("staff"),
        }
    },
)
