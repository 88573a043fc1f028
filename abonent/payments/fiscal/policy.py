"""Which payments need a fiscal receipt from the ISP (54-FZ), per channel; the table is in
docs/payments-receipts.md with its sources (notes/payments-ru.md §2.3).

- cash at the office, online (gateway) and autopay payments: yes — the ISP accepts the money itself; 54-FZ
  asks a receipt of any payer there, a person or an organisation paying by card;
- a gateway listed in ``ABONENT_FISCAL_SKIP_CHANNELS``: no — its own receipt service (e.g. «Чеки от ЮKassa»)
  issues it, a second one from us would fiscalize the money twice;
- terminals and payment agents (``agent:<code>``): no — the agent fiscalizes (103-FZ art. 5, 54-FZ art. 1.2 p.
  5.5), unless the channel is listed in ``ABONENT_FISCAL_OWN_AGENT_CHANNELS`` (a bank app paying the ISP's
  account: then the ISP, by the next business day, 54-FZ art. 1.2 p. 5.4);
- a bank transfer: no from an organisation or an individual entrepreneur (an organisation subscriber, a payer
  INN of 10 digits, or of 12 with the payer named «ИП …»; 54-FZ art. 1.2 p. 9), yes from a person paying by
  requisites (a person's INN has 12 digits too, so an INN alone does not tell);
- entered by staff through the API (``manual``): no — those are corrections and migrations, not money taken.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from abonent.subscribers.models import SubscriberKind

from ..models import Payment, PaymentMethod


def receipt_needed(payment: Payment) -> tuple[bool, str]:
    """Whether the ISP must fiscalize ``payment``, and (when not) why, for the receipt row staff see."""
    if payment.channel in settings.ABONENT_FISCAL_SKIP_CHANNELS:
        return False, _("The payment provider issues the receipt.")
    method = payment.method
    if method in (PaymentMethod.CASH, PaymentMethod.ONLINE, PaymentMethod.AUTOPAY):
        return True, ""
    if method == PaymentMethod.TERMINAL:
        if payment.channel in settings.ABONENT_FISCAL_OWN_AGENT_CHANNELS:
            return True, ""
        return False, _("The payment agent issues the receipt.")
    if method == PaymentMethod.BANK:
        if _from_organisation(payment):
            return False, _("A bank transfer from an organisation needs no receipt.")
        return True, ""
    return False, _("A payment entered by staff needs no receipt.")


def _from_organisation(payment: Payment) -> bool:
    if payment.subscriber_id and payment.subscriber.kind == SubscriberKind.ORGANIZATION:
        return True
    inn = (payment.payer_inn or "").strip()
    payer = (payment.payer or "").strip().upper()
    return len(inn) == 10 or (len(inn) == 12 and payer.startswith(("ИП ", "ИНДИВИДУАЛЬНЫЙ ПРЕДПРИНИМАТЕЛЬ")))
