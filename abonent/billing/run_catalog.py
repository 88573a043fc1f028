"""The catalog a billing run prices from (billing/engine.py): the plans and their prices, loaded once at the
start, and each distinct priced period computed once and looked up after. A daily run prices the same few
(plan, day) pairs for a million subscriptions; subscribers with their own price or promotions are priced once
per what decides them (billing/pricing)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from decimal import Decimal

from abonent.catalog.models import ChargeMode, Plan, PlanPrice

from . import calculations as calc
from .ledger import revenue_account
from .periods import amount_for, period_for
from .pricing.rules import Context, RunPricing, discount, effective_price


@dataclass
class PlanInfo:
    plan: Plan
    prices: list[PlanPrice]  # newest first
    revenue_account_id: int

    def price_on(self, day: dt.date) -> PlanPrice | None:
        return next((p for p in self.prices if p.valid_from <= day), None)


@dataclass(frozen=True)
class RunPeriod:
    """One period of a plan from a start day, priced: what every subscription in that position is charged.

    A daily run prices the same few (plan, day) pairs for a million subscriptions: computed once, looked up
    after, with the text forms the writes need.
    """

    start: dt.date
    end: dt.date
    start_text: str
    end_text: str
    amount: Decimal
    amount_text: str
    numerator: int | None
    denominator: int | None
    price_id: int
    revenue_account_id: int
    only_if_online: bool
    # Set when the fee is not the list price's (billing/pricing): the whole period's fee it was measured on.
    base_fee_text: str | None = None
    # The discount line beside the fee (positive here, charged negative), and the whole period's discount.
    discount: Decimal = Decimal("0.00")
    discount_text: str = "0.00"
    discount_base_text: str | None = None


class RunCatalog:
    def __init__(self) -> None:
        self.plans: dict[int, PlanInfo] = {}
        self.periods: dict[tuple, RunPeriod | str] = {}
        self.pricing: RunPricing | None = None
        self._lock = threading.Lock()  # a plan created mid-run, loaded by one chunk worker at a time

    def load(self, plan_ids=None) -> None:
        if self.pricing is None:
            self.pricing = RunPricing()
        prices: dict[int, list[PlanPrice]] = {}
        price_rows = PlanPrice.objects.order_by("plan_id", "-valid_from")
        plans = Plan.objects.select_related("service")
        if plan_ids is not None:
            price_rows, plans = price_rows.filter(plan_id__in=plan_ids), plans.filter(pk__in=plan_ids)
        for price in price_rows:
            prices.setdefault(price.plan_id, []).append(price)
        for plan in plans:
            self.plans[plan.pk] = PlanInfo(plan, prices.get(plan.pk, []), revenue_account(plan.service).pk)

    def plan_info(self, plan_id: int) -> PlanInfo:
        """A plan of the catalog loaded at the start, or one created since (a subscription activated on a new plan
        while the run was going: it used to abort the run with a KeyError)."""
        info = self.plans.get(plan_id)
        if info is None:
            with self._lock:
                if plan_id not in self.plans:
                    self.load([plan_id])
            info = self.plans[plan_id]
        return info

    def period(self, plan_id: int, start: dt.date, anchor_day: int) -> RunPeriod | str:
        """The priced period of ``plan_id`` beginning at ``start``, or why it cannot be charged (cached)."""
        info = self.plan_info(plan_id)
        price = info.price_on(start)
        if info.plan.charge_mode == ChargeMode.TIME:
            # No fee, priced or not: the cursor walks the periods (where rating splits sessions) and writes nothing.
            _start, end, _full = period_for(info.plan, start, anchor_day)
            result: RunPeriod | str = RunPeriod(
                start=start,
                end=end,
                start_text=start.isoformat(),
                end_text=end.isoformat(),
                amount=Decimal("0.00"),
                amount_text="0.00",
                numerator=None,
                denominator=None,
                price_id=price.pk if price else 0,
                revenue_account_id=info.revenue_account_id,
                only_if_online=False,
            )
        elif price is None:
            result = f"plan {info.plan.code} has no price on {start.isoformat()}"
        else:
            result = self._priced(info, price, price, start, anchor_day, self.pricing.universal_discount)
        self.periods[(plan_id, start, anchor_day)] = result
        return result

    def personal_period(self, plan_id: int, start: dt.date, anchor_day: int, context: Context) -> RunPeriod | str:
        """As ``period``, at the subscription's effective price and with its own promotions; cached by what
        decides them, so subscribers of one group price on one day are priced once."""
        info = self.plan_info(plan_id)
        if info.plan.charge_mode == ChargeMode.TIME:
            return self.periods.get((plan_id, start, anchor_day)) or self.period(plan_id, start, anchor_day)
        price = info.price_on(start)
        if price is None:
            return f"plan {info.plan.code} has no price on {start.isoformat()}"
        # Decided on the whole period's first day: a period charged in parts (an activation or an unfreeze mid-way)
        # is priced and discounted as the part charged first, which a freeze gives back at that price.
        first = period_for(info.plan, start, anchor_day)[2]
        effective = effective_price(
            price, plan_id, first, own=context.own, groups=context.groups, bundles=context.bundles
        )
        promotions = self.pricing.promotions_for(plan_id, first, context, effective.bundle_id)
        key = (plan_id, start, anchor_day, effective, tuple(p.id for p in promotions))
        period = self.periods.get(key)
        if period is None:
            period = self._priced(
                info, price, effective, start, anchor_day, lambda _p, _s, fee: discount(fee, promotions)
            )
            self.periods[key] = period
        return period

    def _priced(
        self, info: PlanInfo, price: PlanPrice, fees, start: dt.date, anchor_day: int, discount_of
    ) -> RunPeriod:
        """The period of ``info``'s plan from ``start`` at ``fees`` (the list price or an ``Effective``), with the
        discount ``discount_of(plan id, whole period's first day, whole period's fee)`` gives."""
        plan = info.plan
        period_start, period_end, full_start = period_for(plan, start, anchor_day)
        amount, numerator, denominator = amount_for(plan, fees, period_start, period_end, full_start)
        monthly = plan.charge_mode != ChargeMode.DAILY
        whole = fees.monthly_fee if monthly else amount
        off = discount_of(plan.pk, full_start, whole)
        part = off
        if off and numerator is not None:
            part = calc.prorate(off, period=(full_start, period_end), used_from=period_start)
        return RunPeriod(
            start=period_start,
            end=period_end,
            start_text=period_start.isoformat(),
            end_text=period_end.isoformat(),
            amount=amount,
            amount_text=str(amount),
            numerator=numerator,
            denominator=denominator,
            price_id=price.pk,
            revenue_account_id=info.revenue_account_id,
            only_if_online=plan.charge_only_if_online,
            base_fee_text=str(fees.monthly_fee) if monthly and fees.monthly_fee != price.monthly_fee else None,
            discount=part,
            discount_text=str(part),
            discount_base_text=str(off) if part and monthly else None,
        )
