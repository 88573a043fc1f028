"""Reads of billing: balances, the ledger with a running balance, subscriptions, plan-change previews."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum, Window
from django.utils import timezone
from django.utils.translation import gettext

from abonent.catalog.models import ChargeMode, PeriodAnchor, Plan, ProrationUnit, Turbo
from abonent.core import clock

from .models import (
    Charge,
    ChargeKind,
    LedgerAccount,
    LedgerTransaction,
    Posting,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
    TurboActivation,
    TurboStatus,
)

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Balance:
    balance: Decimal
    credit_limit: Decimal
    promised: Decimal

    @property
    def available(self) -> Decimal:
        """What the subscriber may still spend before access is restricted (balance + credit limit)."""
        return self.balance + self.credit_limit


def get_balance(subscriber) -> Balance:
    from .models import PromisedPayment, PromisedPaymentStatus

    account = LedgerAccount.objects.filter(subscriber_id=subscriber.pk).values("balance", "credit_limit").first()
    promised = (
        PromisedPayment.objects.filter(subscriber_id=subscriber.pk, status=PromisedPaymentStatus.OPEN).aggregate(
            s=Sum("amount")
        )["s"]
        or ZERO
    )
    if account is None:
        return Balance(ZERO, ZERO, promised)
    return Balance(account["balance"], account["credit_limit"], promised)


@dataclass
class LedgerLine:
    transaction_id: int
    effective_date: dt.date
    created_at: dt.datetime
    kind: str
    kind_label: str
    memo: str
    amount: Decimal
    running_balance: Decimal
    reversed: bool


def ledger_lines(subscriber, *, limit: int = 100) -> list[LedgerLine]:
    """The subscriber's account statement, newest first, each line with the balance after it.

    A billing run's batch transaction (ADR 0010) names no subscriber and its memo is the run's: its line shows
    what the subscriber was charged for instead, from the charges (plan and period, as a per-charge
    transaction's memo would read).
    """
    from .ledger import BATCH_KEY_PREFIX
    from .models import TransactionKind

    labels = dict(TransactionKind.choices)
    rows = list(
        Posting.objects.filter(account__subscriber_id=subscriber.pk)
        # By accounting date, then by recording order: a back-dated payment sits where it belongs.
        .annotate(
            running=Window(
                Sum("amount"),
                order_by=[F("transaction__effective_date").asc(), F("transaction_id").asc(), F("id").asc()],
            ),
            reversed=Exists(LedgerTransaction.objects.filter(reverses_id=OuterRef("transaction_id"))),
        )
        .select_related("transaction")
        .order_by("-transaction__effective_date", "-transaction_id", "-id")[:limit]
    )
    # The traffic rating's chunk transactions (``usage:``) carry many subscribers' charges the same way.
    batches = [p.transaction_id for p in rows if p.transaction.idempotency_key.startswith((BATCH_KEY_PREFIX, "usage:"))]
    described: dict[int, list[str]] = {}
    if batches:
        for charge in (
            Charge.objects.filter(transaction_id__in=batches, subscription__subscriber_id=subscriber.pk)
            .select_related("price__plan")
            .order_by("period_start", "id")
        ):
            described.setdefault(charge.transaction_id, []).append(charge_description(charge))
    lines = []
    for p in rows:
        tx = p.transaction
        lines.append(
            LedgerLine(
                tx.pk,
                tx.effective_date,
                tx.created_at,
                tx.kind,
                str(labels.get(tx.kind, tx.kind)),
                "; ".join(described[tx.pk]) if tx.pk in described else tx.memo,
                p.amount,
                p.running,
                p.reversed,
            )
        )
    return lines


def charge_description(charge: Charge) -> str:
    """What a fee was for, as the operator reads it: the plan and the days covered (last day inclusive)."""
    last_day = charge.period_end - dt.timedelta(days=1)
    if charge.kind in (ChargeKind.USAGE, ChargeKind.USAGE_ADJUSTMENT):
        usage = charge.kind == ChargeKind.USAGE
        label = gettext("Traffic over the included volume") if usage else gettext("Late traffic")
        gb = Decimal(charge.quantity or 0) / 10**9
        return f"{label} {charge.period_start:%d.%m.%Y}–{last_day:%d.%m.%Y}: {gb.normalize():f} " + gettext("GB")
    plan = charge.price.plan.name if charge.price_id else ""
    text = f"{plan} {charge.period_start:%d.%m.%Y}–{last_day:%d.%m.%Y}".strip()
    if charge.kind == ChargeKind.DISCOUNT:  # the fee's discount line beside it (billing/pricing)
        from django.utils.translation import gettext as _

        return _("discount on %(fee)s: %(amount)s") % {"fee": text, "amount": -charge.amount}
    return text


def subscriptions_of(subscriber) -> QuerySet[Subscription]:
    return Subscription.objects.filter(subscriber_id=subscriber.pk).select_related(
        "plan", "pending_plan", "plan__service"
    )


def current_subscriptions(subscriber) -> QuerySet[Subscription]:
    return subscriptions_of(subscriber).exclude(status=SubscriptionStatus.TERMINATED)


def subscribers_billed(
    start: dt.date, end: dt.date, *, using: str = "default", branch_ids=None, service_id=None, plan_id=None
) -> int:
    """Subscribers with a subscription that ran on some day of ``[start, end)``, of ``branch_ids`` when given: ARPU's
    denominator, the one definition the dashboard and the ARPU report share (``using``: the reports' replica). With
    a service or a plan: a subscription of that service, or on that plan on some day of the period (its plan now
    and not changed to it after, or changed from it since ``start``), as the numerator then counts that service's
    or plan's revenue only."""
    qs = (
        Subscription.objects.using(using)
        .filter(started_on__lt=end)
        .filter(Q(ended_on__isnull=True) | Q(ended_on__gte=start))
    )
    if branch_ids is not None:
        qs = qs.filter(subscriber__branch_id__in=branch_ids)
    if service_id:
        qs = qs.filter(service_id=service_id)
    if plan_id:
        tz = timezone.get_current_timezone()
        start_at = timezone.make_aware(dt.datetime.combine(start, dt.time.min), tz)
        end_at = timezone.make_aware(dt.datetime.combine(end, dt.time.min), tz)
        changes = SubscriptionEvent.objects.using(using).filter(
            subscription_id=OuterRef("pk"), kind=SubscriptionEventKind.PLAN_CHANGED
        )
        qs = qs.filter(
            (Q(plan_id=plan_id) & ~Exists(changes.filter(to_plan_id=plan_id, effective_at__gte=end_at)))
            | Exists(changes.filter(from_plan_id=plan_id, effective_at__gte=start_at))
        )
    return qs.values("subscriber_id").distinct().count()


def plans_offered(subscription: Subscription, *, channel: str = "staff") -> QuerySet[Plan]:
    """Plans the subscription may switch to: in the portal only the plan's public ``switchable_to``; staff may also
    choose any public plan of the same service."""
    current = subscription.plan
    offered = Q(pk__in=current.switchable_to.values("pk"))
    if channel == "staff":
        offered |= Q(is_public=True, service_id=current.service_id)
    else:
        # A subscriber picks from the public plans only: a plan switchable to but withdrawn from sale (is_public
        # turned off) is not offered through the portal, its API or any caller speaking for the subscriber.
        offered &= Q(is_public=True)
    # One service: a subscription is one subscriber's live use of one service (billing_sub_one_live_per_service).
    return (
        Plan.objects.filter(offered, is_archived=False, service_id=current.service_id)
        .exclude(pk=current.pk)
        .order_by("name")
    )


# The kinds that pay for days of service, and the credits and reversals that give such days back; a fee's discount
# line (billing/pricing) is given back with it, in the same proportion.
SERVICE_KINDS = [
    ChargeKind.FEE,
    ChargeKind.PRORATION_CHARGE,
    ChargeKind.PRORATION_CREDIT,
    ChargeKind.REVERSAL,
    ChargeKind.DISCOUNT,
]
# Charges for days of service: given back whole or for some days, measured as the run measures them.
DAY_REVERSIBLE_CHARGES = {ChargeKind.FEE, ChargeKind.PRORATION_CHARGE}
# Charges for a thing rather than for days: given back whole.
WHOLE_REVERSIBLE_CHARGES = {ChargeKind.ACTIVATION, ChargeKind.FREEZE_FEE, ChargeKind.TURBO}


@dataclass(frozen=True)
class UnusedCredit:
    """What the charges already made cover from a moment on (net of their discounts), and the price of the plan
    that covered it: ``fees`` less ``discount`` is ``amount``. ``base_fee`` and ``discount_base`` are the whole
    periods' amounts the covering charges were measured on when not the list price (billing/pricing), for the
    credit lines to be measured on the same later."""

    amount: Decimal
    price_id: int | None
    fees: Decimal = ZERO
    base_fee: Decimal | None = None
    discount: Decimal = ZERO
    discount_price_id: int | None = None
    discount_base: Decimal | None = None


def unused_credit(subscription: Subscription, at) -> Decimal:
    """What the charges already made cover from ``at`` on (a date, or an instant for by-second plans)."""
    return charged_beyond(subscription, at).amount


def charged_beyond(subscription: Subscription, at) -> UnusedCredit:
    """What the charges already made cover from ``at`` on (a date, or an instant for by-second plans).

    Each charge covers its span ``[period_start, period_end)``; the part of the span after ``at`` is unused.
    Credits and reversals given earlier are negative charges over their own spans and count the same way, so
    nothing is credited twice and the credit never exceeds what was actually taken.

    The part is measured on the charge's *base*, the whole period of its plan and price (``charge_base``): the
    days ``[a, b)`` of a period of ``n`` days at fee ``F`` are worth ``R(a) − R(b)`` with ``R(x) = round(F·(end −
    x)/n)``, the same rounding the billing run uses for a period that starts mid-way. So any charges and credits
    of one period add up, day by day, to exactly what its days in service are worth: a freeze, an unfreeze and
    a termination in one month lose or gain no kopeck to rounding (issue 11's property test).
    """
    day = at.date() if isinstance(at, dt.datetime) else at
    charges = (
        Charge.objects.filter(subscription=subscription, kind__in=SERVICE_KINDS, period_end__gt=day)
        .select_related("price__plan")
        .order_by("id")
    )
    fees, discounts = ZERO, ZERO
    by_price: dict[tuple, Decimal] = {}
    by_discount: dict[tuple, Decimal] = {}
    for charge in charges:
        part = charge_part_after(charge, at, subscription.anchor_day)
        key = (charge.price_id, charge.base_fee)
        if charge.kind == ChargeKind.DISCOUNT:
            discounts -= part
            by_discount[key] = by_discount.get(key, ZERO) - part
        else:
            fees += part
            by_price[key] = by_price.get(key, ZERO) + part
    # The price whose charges still cover the days after ``at`` (net of their credits): one plan is in force on
    # a day, so one price has a positive net; a credit named after it is measured on its period later.
    covering = max(by_price, key=lambda key: by_price[key], default=None)
    if covering is not None and by_price[covering] <= 0:
        covering = None
    discounted = max(by_discount, key=lambda key: by_discount[key], default=None)
    if discounted is not None and by_discount[discounted] <= 0:
        discounted = None
    fees = max(fees, ZERO)
    discounts = min(max(discounts, ZERO), fees) if discounted else ZERO
    return UnusedCredit(
        fees - discounts,
        covering[0] if covering else None,
        fees,
        covering[1] if covering else None,
        discounts,
        discounted[0] if discounted else None,
        discounted[1] if discounted else None,
    )


def charge_base(charge: Charge, anchor_day: int) -> tuple[Decimal, dt.date, dt.date] | None:
    """``(fee, start, end)`` of the whole period a charge is a part of, or ``None`` for a charge without a price
    (credits written before migration 0006), which is prorated over its own span."""
    from . import calculations as calc

    if charge.price_id is None:
        return None
    plan = charge.price.plan
    if plan.charge_mode == ChargeMode.DAILY:
        return abs(charge.amount), charge.period_start, charge.period_start + dt.timedelta(days=1)
    anniversary = anchor_day if plan.period_anchor == PeriodAnchor.ANNIVERSARY else None
    start, end = calc.monthly_period(charge.period_start, anniversary_day=anniversary)
    return (charge.base_fee if charge.base_fee is not None else charge.price.monthly_fee), start, end


def charge_part_after(charge: Charge, at, anchor_day: int) -> Decimal:
    """The part of ``charge`` for its days (or seconds) from ``at`` on; negative for a credit or reversal."""
    from . import calculations as calc

    base = charge_base(charge, anchor_day)
    if base is None:
        return calc.prorate(charge.amount, period=_as_span(charge.period_start, charge.period_end, at), used_from=at)
    fee, base_start, base_end = base
    period = _as_span(base_start, base_end, at)
    start, end = _as_span(charge.period_start, charge.period_end, at)
    used_from = max(at, start)
    if used_from >= end:
        return ZERO
    part = calc.prorate(fee, period=period, used_from=used_from) - calc.prorate(fee, period=period, used_from=end)
    # A by-second charge began at an instant its dates do not record: never more than the charge itself.
    part = min(max(part, ZERO), abs(charge.amount))
    return part if charge.amount > 0 else -part


def _as_span(start: dt.date, end: dt.date, at):
    if isinstance(at, dt.datetime):
        from django.utils import timezone

        tz = timezone.get_current_timezone()
        return (dt.datetime.combine(start, dt.time.min, tzinfo=tz), dt.datetime.combine(end, dt.time.min, tzinfo=tz))
    return (start, end)


@dataclass(frozen=True)
class PlanChangePreview:
    """What a plan change will do, before it is confirmed (the console and the portal show this).

    ``catch_up``: what periods a missed billing run left unbilled cost first, at the current plan's price
    (``do_change_plan`` charges them before the change; ``actions.preview_change_plan`` measures it)."""

    subscription_id: int
    from_plan_id: int
    to_plan_id: int
    immediate: bool
    effective_on: dt.date
    credit: Decimal
    charge: Decimal
    balance_before: Decimal
    catch_up: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        """What the change itself costs: the new plan's charge less the credit for the old one."""
        return self.charge - self.credit

    @property
    def total(self) -> Decimal:
        """What confirming takes off the balance in all: the catch-up and the change."""
        return self.catch_up + self.net

    @property
    def balance_after(self) -> Decimal:
        return self.balance_before - self.total


def new_span_end(subscription: Subscription, plan: Plan, today: dt.date) -> dt.date:
    """Where the new plan's first charge after an immediate change ends, and the charging cursor resumes."""
    from .periods import period_for

    # The end of the new plan's period containing today: the same day the old monthly cycle ends when both plans
    # count periods alike. Keeping the old cycle's end when they do not (an anniversary plan to a calendar one)
    # charged the new plan only to the end of its own month and then nothing until the old cycle's end.
    return period_for(plan, today, subscription.anchor_day)[1]


def _new_plan_charge(subscription, plan, new_price, today, at) -> Decimal:
    from . import calculations as calc
    from .periods import amount_for, period_for

    if plan.charge_mode == ChargeMode.TIME:
        return ZERO  # no recurring fee: its time online is rated from the change on
    end = new_span_end(subscription, plan, today)
    if plan.charge_mode == ChargeMode.DAILY:
        # Today's share from the moment of the change: by seconds when the old plan is credited by seconds
        # (a whole day here paid the morning at both plans), the whole day otherwise.
        day = amount_for(plan, new_price, today, end, today)[0]
        return calc.prorate(day, period=_as_span(today, end, at), used_from=at)
    full_start = period_for(plan, today, subscription.anchor_day)[2]
    # ``new_price`` is the subscription's effective price of the new plan (billing/pricing).
    # The new fee for [at, period end), measured against the new plan's full period as the run measures a period
    # that starts mid-way: the same R(x) every later proration of this charge uses (``charge_part_after``).
    return calc.prorate(new_price.monthly_fee, period=_as_span(full_start, end, at), used_from=at)


def change_moment(plan: Plan, now: dt.datetime):
    return now if plan.proration_unit == ProrationUnit.SECONDS else now.date()


def preview_plan_change(
    subscription: Subscription,
    plan: Plan,
    *,
    force: bool = False,
    now: dt.datetime | None = None,
    at_period_end: bool = False,
) -> PlanChangePreview:
    """What changing to ``plan`` does now: an upgrade (or a ``force``d downgrade) at once with proration, a downgrade at
    the next period; ``at_period_end``: any change at the next period (the bulk plan change), nothing charged now."""
    from django.utils import timezone

    from abonent.core import clock

    from .offers import Direction, change_direction
    from .pricing.selectors import effective_for

    now = timezone.localtime(now or clock.now())
    today = now.date()
    # The prices this subscription pays (its own, its group's, a bundle's or the list price): an upgrade is
    # measured, and the new plan charged, at those.
    old_price = effective_for(subscription, subscription.plan, today)[1]
    new_price = effective_for(subscription, plan, today)[1]
    upgrade = change_direction(old_price.monthly_fee, new_price.monthly_fee) != Direction.DOWNGRADE
    balance = get_balance(subscription.subscriber).balance
    charged_ahead = subscription.next_charge_on > today
    if charged_ahead and (at_period_end or not (upgrade or force)):
        return PlanChangePreview(
            subscription.pk, subscription.plan_id, plan.pk, False, subscription.next_charge_on, ZERO, ZERO, balance
        )
    credit = charge = ZERO
    if charged_ahead and subscription.status == SubscriptionStatus.ACTIVE:
        at = change_moment(subscription.plan, now)
        credit = unused_credit(subscription, at)
        charge = _new_plan_charge(subscription, plan, new_price, today, at)
    return PlanChangePreview(subscription.pk, subscription.plan_id, plan.pk, True, today, credit, charge, balance)


def checked_preview(
    subscription: Subscription,
    plan: Plan,
    *,
    force: bool = False,
    channel: str = "staff",
    now: dt.datetime | None = None,
    at_period_end: bool = False,
) -> PlanChangePreview:
    """``preview_plan_change``, refusing with ``do_change_plan``'s codes a change it would refuse: a preview
    never shows amounts for a change that cannot be confirmed, and the action confirms through this too."""
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    from abonent.catalog.selectors import NoPriceError

    if subscription.subscriber.is_closed:
        raise ValidationError(_("The account is closed."), code="subscriber_closed")
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Only an active subscription can change its plan."), code="subscription_not_active")
    if plan.pk == subscription.plan_id:
        raise ValidationError(
            {"plan": ValidationError(_("The subscription is already on this plan."), code="same_plan")}
        )
    if not plans_offered(subscription, channel=channel).filter(pk=plan.pk).exists():
        raise ValidationError(
            {"plan": ValidationError(_("This plan is not offered to this subscriber."), code="plan_not_offered")}
        )
    try:
        return preview_plan_change(subscription, plan, force=force, now=now, at_period_end=at_period_end)
    except NoPriceError as exc:
        raise ValidationError(
            {"plan": ValidationError(_("The plan has no price on this date."), code="plan_without_price")}
        ) from exc


def turbos_offered(subscription: Subscription) -> QuerySet[Turbo]:
    """The turbo options the subscription's plan sells, cheapest first."""
    return subscription.plan.turbos.filter(is_active=True).order_by("price", "name")


def active_turbos(subscription_ids) -> dict[int, TurboActivation]:
    """The turbo in effect now, by subscription: active and not run out (the worker may not have finished
    one that has)."""
    return {
        t.subscription_id: t
        for t in TurboActivation.objects.filter(
            subscription_id__in=list(subscription_ids), status=TurboStatus.ACTIVE, ends_at__gt=clock.now()
        ).select_related("turbo")
    }


def promised_payment_policy(subscriber):
    """The promised-payment policy of the subscriber's active plan that offers one, or ``None``."""
    subscription = (
        Subscription.objects.filter(
            subscriber=subscriber, status=SubscriptionStatus.ACTIVE, plan__promised_payment_policy__isnull=False
        )
        .select_related("plan__promised_payment_policy")
        .first()
    )
    return subscription.plan.promised_payment_policy if subscription else None


def with_turbo_flags(subscriptions: QuerySet[Subscription]) -> QuerySet[Subscription]:
    """``subscriptions`` with ``offers_turbo`` (the plan sells an option now) and ``has_turbo`` (one is in effect
    now), in the same query: a list asks for the options and the turbo on only of the rows that have them, so
    showing turbos costs nothing where there are none."""
    return subscriptions.annotate(
        offers_turbo=Exists(Plan.turbos.through.objects.filter(plan_id=OuterRef("plan_id"), turbo__is_active=True)),
        has_turbo=Exists(
            TurboActivation.objects.filter(
                subscription_id=OuterRef("pk"), status=TurboStatus.ACTIVE, ends_at__gt=clock.now()
            )
        ),
    )


@dataclass
class ChargeLine:
    """A charge as the subscription's charges page shows it: what is left of it after reversals, and whether
    it may be given back (a charge for days or for a thing, not a credit or a reversal itself)."""

    charge: Charge
    reversed: Decimal
    reversible: bool

    @property
    def last_day(self) -> dt.date:
        return self.charge.period_end - dt.timedelta(days=1)


def charge_lines(subscription: Subscription) -> list[ChargeLine]:
    """The subscription's charges, newest first, each with what reversals have given back of it."""
    charges = list(
        Charge.objects.filter(subscription=subscription).select_related("price__plan").order_by("-period_start", "-id")
    )
    given_back: dict[int, Decimal] = {}
    for charge in charges:
        if charge.reverses_id is not None:
            given_back[charge.reverses_id] = given_back.get(charge.reverses_id, ZERO) - charge.amount
    reversible = DAY_REVERSIBLE_CHARGES | WHOLE_REVERSIBLE_CHARGES
    return [
        ChargeLine(
            c,
            given_back.get(c.pk, ZERO),
            c.kind in reversible and c.amount > 0 and given_back.get(c.pk, ZERO) < c.amount,
        )
        for c in charges
    ]
