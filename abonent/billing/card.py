"""What the subscriber card shows of billing, read once per card: the money (balance, the open promised payment
apart, the credit limit), the subscriptions with their speed, price and next charge, and what to pay.

The header (``header.html``: plan and speed, balance, "01.01: 900 ₽ will be charged, pay 960,68 ₽") and the
balance and subscriptions panels all show these figures, so they are read once and kept on the subscriber object
for the rest of the request (``card_money``), as dunning keeps its access summary. The queries do not depend on
the subscriber's history: the ledger account, the open promised payment, the subscriptions with their plans and
turbo flags, the active freezes, whether any pricing rule exists, and one price per live subscription.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from abonent.catalog.forms import kbps_to_mbps
from abonent.core import clock

from . import selectors
from .models import (
    Freeze,
    FreezeStatus,
    LedgerAccount,
    PromisedPayment,
    PromisedPaymentStatus,
    Subscription,
    SubscriptionStatus,
)
from .upcoming import NextCharge, amount_to_pay, upcoming_fee

ZERO = Decimal("0.00")


@dataclass
class LiveSubscription:
    """A subscription that is not terminated, with what it costs: the next fee and the monthly price it pays."""

    subscription: Subscription
    freeze: Freeze | None
    next_charge: NextCharge | None
    monthly_fee: Decimal | None  # the price it pays a month (its own, its group's, a bundle's or the list price)

    @property
    def download_mbps(self) -> Decimal | None:
        return kbps_to_mbps(self.subscription.plan.download_kbps) or None

    @property
    def upload_mbps(self) -> Decimal | None:
        return kbps_to_mbps(self.subscription.plan.upload_kbps) or None


@dataclass
class CardMoney:
    balance: selectors.Balance
    promised: PromisedPayment | None
    subscriptions: list[Subscription]  # all of them, terminated too, newest first (the subscriptions panel)
    live: list[LiveSubscription] = field(default_factory=list)
    pricing: object = None  # the RunPricing loaded for the card (the panel prices with it too)
    next_on: dt.date | None = None
    next_total: Decimal = ZERO

    @property
    def own_money(self) -> Decimal:
        """The balance without the open promised payment: what the subscriber's own payments left."""
        return self.balance.balance - self.balance.promised

    @property
    def pay_amount(self) -> Decimal:
        return amount_to_pay(self.next_total, available=self.balance.available, promised=self.balance.promised)

    @property
    def promised_policy(self):
        """The promised-payment policy of the newest active subscription whose plan has one (as
        ``selectors.promised_payment_policy`` finds it), from the subscriptions already read."""
        return next(
            (
                s.plan.promised_payment_policy
                for s in self.subscriptions
                if s.status == SubscriptionStatus.ACTIVE and s.plan.promised_payment_policy_id is not None
            ),
            None,
        )

    def live_row(self, subscription_id: int) -> LiveSubscription | None:
        return next((row for row in self.live if row.subscription.pk == subscription_id), None)


def card_money(subscriber) -> CardMoney:
    """The card's billing figures, read on first use in a request and kept on ``subscriber`` for the rest of it."""
    money = getattr(subscriber, "_billing_card", None)
    if money is None:
        money = subscriber._billing_card = _read(subscriber)
    return money


def forget(subscriber) -> None:
    """After an action: the next read is of the state it left."""
    subscriber.__dict__.pop("_billing_card", None)


def _read(subscriber) -> CardMoney:
    from .pricing.rules import RunPricing

    account = LedgerAccount.objects.filter(subscriber_id=subscriber.pk).values("balance", "credit_limit").first()
    # At most one is open (a partial unique index): the balance's promised part is its amount.
    promised = PromisedPayment.objects.filter(subscriber_id=subscriber.pk, status=PromisedPaymentStatus.OPEN).first()
    balance = selectors.Balance(
        account["balance"] if account else ZERO,
        account["credit_limit"] if account else ZERO,
        promised.amount if promised else ZERO,
    )
    subscriptions = list(
        selectors.with_turbo_flags(
            selectors.subscriptions_of(subscriber).select_related(
                "plan__freeze_policy", "plan__promised_payment_policy"
            )
        )
    )
    for s in subscriptions:
        s.subscriber = subscriber
    live = [s for s in subscriptions if s.status != SubscriptionStatus.TERMINATED]
    freezes = (
        {
            f.subscription_id: f
            for f in Freeze.objects.filter(subscription_id__in=[s.pk for s in live], status=FreezeStatus.ACTIVE)
        }
        if any(s.status == SubscriptionStatus.FROZEN for s in live)
        else {}
    )
    money = CardMoney(balance, promised, subscriptions, pricing=RunPricing())
    today = clock.today()
    for s in sorted(live, key=lambda s: (s.started_on, s.pk)):
        freeze = freezes.get(s.pk)
        priced = upcoming_fee(
            plan=s.plan,
            pending=s.pending_plan,
            pending_from=s.pending_plan_from,
            status=s.status,
            next_charge_on=s.next_charge_on,
            frozen_until=freeze.ends_on if freeze else None,
            anchor_day=s.anchor_day,
            today=today,
            subscription=(s.pk, subscriber.pk, money.pricing),
        )
        if priced is not None and not priced[0].downgrade:
            monthly = priced[1].monthly_fee
        else:  # the next fee is the new plan's (or there is no price then): the current plan's price today
            monthly = _monthly_fee_today(s, today, money.pricing)
        money.live.append(LiveSubscription(s, freeze, priced[0] if priced else None, monthly))
    # A time plan's "fee" is nothing (its time online is rated): no next charge to announce.
    charges = [row.next_charge for row in money.live if row.next_charge is not None and row.next_charge.amount > 0]
    money.next_on = min((c.on for c in charges), default=None)
    money.next_total = sum((c.amount for c in charges if c.on == money.next_on), ZERO)
    return money


def _monthly_fee_today(subscription: Subscription, today: dt.date, pricing) -> Decimal | None:
    from abonent.catalog.selectors import NoPriceError

    from .pricing.selectors import effective_for

    try:
        return effective_for(subscription, subscription.plan, today, pricing=pricing)[1].monthly_fee
    except NoPriceError:
        return None


def render_header(request, subscriber, *, out_of_band: bool = False) -> SafeString:
    """The card header's billing part; ``out_of_band`` for HTMX to replace it after a billing action."""
    return render_to_string(
        "billing/_header.html",
        {"money": card_money(subscriber), "subscriber": subscriber, "out_of_band": out_of_band},
        request=request,
    )
