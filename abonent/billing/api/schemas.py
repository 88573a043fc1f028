"""The billing API's request and answer bodies."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema

from abonent.catalog.api import Money, TurboOut

# ASCII digits only (``\d`` also matches "５", which was booked as 5.00). At most 10 integer digits: the
# ledger's columns are numeric(14,2), so any sum of two amounts sent still fits them (the actions add a
# business limit below this).
MONEY_IN = r"^[+-]?[0-9]{1,10}(\.[0-9]{1,2})?$"


class BalanceOut(Schema):
    subscriber_id: int
    balance: Money = Field(description="The sum of the personal account's postings; negative is a debt")
    credit_limit: Money
    available: Money = Field(description="balance + credit_limit: what may be spent before access is restricted")
    promised: Money = Field(description="Open promised payment, already included in balance")
    currency: str


class LedgerLineOut(Schema):
    transaction_id: int
    effective_date: dt.date
    created_at: dt.datetime
    kind: str
    memo: str
    amount: Money = Field(description="Positive adds to the balance, negative takes away")
    running_balance: Money = Field(description="The balance after this line")
    reversed: bool


class FreezeOut(Schema):
    id: int
    starts_on: dt.date
    ends_on: dt.date


class EffectivePriceOut(Schema):
    subscription_id: int
    plan_id: int
    day: dt.date
    list_fee: Money = Field(description="The plan's list price (PlanPrice)")
    fee: Money = Field(description="The monthly fee this subscription is charged")
    source: str = Field(description="subscription | group | bundle | plan: where the fee comes from")
    source_id: int | None
    reason: str
    valid_from: dt.date | None
    valid_until: dt.date | None = Field(description="The last day of the fee, inclusive")
    discount: Money = Field(description="The promotions' discount on a whole period")
    net: Money
    promotions: list[str]


class SubscriptionOut(Schema):
    id: int
    subscriber_id: int
    plan_id: int
    plan_name: str
    service_id: int
    status: str
    started_on: dt.date
    ended_on: dt.date | None
    next_charge_on: dt.date = Field(description="The first day not yet charged")
    pending_plan_id: int | None = Field(description="A downgrade waiting for the next period")
    pending_plan_from: dt.date | None
    freeze: FreezeOut | None = Field(description="The freeze in effect, if frozen")
    price: EffectivePriceOut | None = Field(
        None, description="The price it pays now and where it comes from (none for a terminated subscription)"
    )


class ActivateIn(Schema):
    plan_id: int
    reason: str = Field("", max_length=500)


class PreviewParams(Schema):
    plan_id: int
    force: bool = Field(False, description="Apply a downgrade now instead of at the next period")


class PreviewOut(Schema):
    subscription_id: int
    from_plan_id: int
    to_plan_id: int
    immediate: bool = Field(description="false: a downgrade scheduled for effective_on, nothing charged now")
    effective_on: dt.date
    credit: Money = Field(description="The unused part of the current plan, given back")
    charge: Money = Field(description="The new plan for the rest of the period")
    net: Money = Field(description="charge − credit")
    balance_before: Money
    balance_after: Money


class PlanChangeIn(Schema):
    plan_id: int
    force: bool = False
    reason: str = Field("", max_length=500)


class FreezeIn(Schema):
    days: int = Field(..., ge=1, le=366)
    reason: str = Field("", max_length=500)


class ReasonIn(Schema):
    reason: str = Field("", max_length=500)


class TerminateIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)


class AdjustmentIn(Schema):
    amount: str = Field(..., pattern=MONEY_IN, description="Positive adds to the balance, negative takes away")
    reason: str = Field(..., min_length=1, max_length=500)


class AdjustmentOut(Schema):
    transaction_id: int
    effective_date: dt.date
    amount: Money
    reason: str
    balance: BalanceOut


class OneOffChargeIn(Schema):
    service_id: int
    amount: str | None = Field(None, pattern=MONEY_IN, description="null: the service's list price")
    reason: str = Field(..., min_length=1, max_length=500)


class OneOffChargeOut(Schema):
    transaction_id: int
    effective_date: dt.date
    service_id: int
    amount: Money = Field(description="What was charged: taken from the balance")
    memo: str = Field(description="The ledger line's text: the service's name and the reason")
    balance: BalanceOut


class PromisedPaymentIn(Schema):
    amount: str | None = Field(None, pattern=MONEY_IN, description="null: the most the plan's policy allows")


class PromisedPaymentOut(Schema):
    id: int
    amount: Money
    fee: Money
    taken_at: dt.datetime
    due_on: dt.date
    status: str
    balance: BalanceOut


class CreditLimitIn(Schema):
    amount: str = Field(..., pattern=MONEY_IN)
    reason: str = Field(..., min_length=1, max_length=500)


class TurboRefOut(Schema):
    id: int
    code: str
    name: str


class TurboActivationOut(Schema):
    id: int
    subscription_id: int
    turbo: TurboRefOut
    download_kbps: int = Field(description="As bought: a later change of the option does not change it")
    upload_kbps: int
    price: Money = Field(description="Charged from the balance when bought")
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str = Field(description="active, finished (ran out) or ended_early")
    ended_at: dt.datetime | None


class SubscriptionTurbosOut(Schema):
    subscription_id: int
    offered: list[TurboOut] = Field(description="The options the plan sells, cheapest first")
    active: TurboActivationOut | None = Field(description="The turbo in effect now, if any")


class TurboIn(Schema):
    turbo_id: int
    reason: str = Field("", max_length=500)


class LedgerParams(Schema):
    limit: int = Field(100, ge=1, le=1000)


class ChargeOut(Schema):
    id: int
    subscription_id: int
    kind: str = Field(description="fee, activation, proration_credit, proration_charge, freeze_fee, turbo, or reversal")
    period_start: dt.date = Field(description="The first day the charge is for")
    period_end: dt.date = Field(description="The day after the last day it is for")
    amount: Money = Field(description="Positive is charged to the subscriber, negative given back")
    price_id: int | None
    plan_name: str | None
    transaction_id: int
    reverses_id: int | None = Field(description="For a reversal: the charge it gives back")
    reversed: Money = Field(description="How much of this charge reversals have given back")


class ChargeReversalIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)
    first_day: dt.date | None = Field(
        None, description="A fee's first day to give back; omitted: its first day (a charge for a thing: whole)"
    )
    until: dt.date | None = Field(
        None,
        description="The day after the last day to give back, at most today (only days served before today are "
        "given back); omitted: every day served so far",
    )


class ChargeReversalOut(Schema):
    reversal: ChargeOut
    balance: BalanceOut


class TransactionReversalOut(Schema):
    transaction_id: int = Field(description="The reversal's own ledger transaction")
    reverses_id: int
    amount: Money = Field(description="What the reversal added to the balance")
    balance: BalanceOut
