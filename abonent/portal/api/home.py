"""``GET /api/v1/my/home``: what the portal's home page shows, as data (``home_data``). The usage routes are in
``usage`` beside it (imported here: the package's ``__init__`` names one module per area)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema

from abonent.api.errors import ErrorOut

from ..home_data import Home, home_of
from . import router

StateName = Literal["active", "warned", "restricted", "suspended", "frozen", "blocked", "terminated"]


class MyAccessOut(Schema):
    state: StateName = Field(description="Dunning's access state: what the NAS enforces now")
    label: str = Field(description="The state in the request's language")
    since: dt.datetime | None
    reason: str = Field(description="The operator's words when blocked or terminated; empty otherwise")


class MyNextChargeOut(Schema):
    on: dt.date = Field(description="The day the billing run charges it (today when already due)")
    amount: Decimal = Field(description="Exactly what the run will charge, prorated where the period is partial")
    plan: str = Field(description="The plan charged: the new one when a scheduled downgrade comes first")
    downgrade: bool


class MyPlanOut(Schema):
    subscription_id: int
    plan: str
    status: Literal["active", "frozen"]
    download_kbps: int = Field(description="0: not limited")
    upload_kbps: int
    monthly_fee: Decimal | None = Field(description="The plan's monthly fee at the next charge; null without a price")
    daily_fee: Decimal | None = Field(description="For a daily plan priced by the day: a day's fee")
    charged_daily: bool
    frozen_until: dt.date | None = Field(description="Frozen: the day service and fees resume")
    pending_plan: str | None = Field(description="A downgrade scheduled for ``pending_plan_from``")
    pending_plan_from: dt.date | None
    next_charge: MyNextChargeOut | None


class MyConnectionOut(Schema):
    online: bool
    since: dt.datetime | None = Field(description="Online: when the session started")
    ip_address: str | None
    last_seen: dt.datetime | None = Field(description="Offline: when the last session ended; null if never online")
    today_download_bytes: int = Field(description="Sent to the subscriber today (the operator's day)")
    today_upload_bytes: int


class MyHomeOut(Schema):
    account_number: str
    closed: bool = Field(description="The contract is closed: no service")
    balance: Decimal = Field(description="The account's balance, an open promised payment included")
    credit_limit: Decimal
    promised: Decimal = Field(description="The open promised payment's amount (0 without one)")
    promised_due: dt.date | None = Field(description="Its last day")
    days_left: int | None = Field(description="Days the money lasts at today's fees; null without recurring fees")
    runout_on: dt.date | None = Field(description="The day the money runs out at today's fees")
    access: MyAccessOut
    pay_amount: Decimal = Field(
        description="What to pay: restricted or suspended, what restores access and covers the next charge; "
        "otherwise what the next charge lacks (0: nothing needed)"
    )
    pay_minimum: Decimal = Field(description="Restricted or suspended: the least that restores access now")
    next_charge_on: dt.date | None = Field(description="The earliest next charge of the plans")
    next_charge_amount: Decimal = Field(description="Everything charged that day")
    plans: list[MyPlanOut]
    connection: MyConnectionOut
    support_phone: str | None = Field(description="The operator's phone, when configured")


def home_out(subscriber, home: Home) -> dict:
    access, c = home.access, home.connection
    plans = [
        {
            "subscription_id": p.subscription_id,
            "plan": p.plan_name,
            "status": p.status,
            "download_kbps": p.download_kbps,
            "upload_kbps": p.upload_kbps,
            "monthly_fee": p.monthly_fee,
            "daily_fee": p.daily_fee,
            "charged_daily": p.daily,
            "frozen_until": p.frozen_until,
            "pending_plan": p.pending_plan_name or None,
            "pending_plan_from": p.pending_plan_from,
            "next_charge": (
                {
                    "on": p.next_charge.on,
                    "amount": p.next_charge.amount,
                    "plan": p.next_charge.plan_name,
                    "downgrade": p.next_charge.downgrade,
                }
                if p.next_charge
                else None
            ),
        }
        for p in home.plans
    ]
    return {
        "account_number": subscriber.account_number,
        "closed": home.closed,
        "balance": home.balance,
        "credit_limit": home.credit_limit,
        "promised": home.promised,
        "promised_due": home.promised_due,
        "days_left": home.days_left,
        "runout_on": home.runout_on,
        "access": {"state": access.state, "label": str(access.label), "since": access.since, "reason": access.reason},
        "pay_amount": home.pay_amount,
        "pay_minimum": home.pay_minimum,
        "next_charge_on": home.next_on,
        "next_charge_amount": home.next_total,
        "plans": plans,
        "connection": {
            "online": c.online,
            "since": c.since,
            "ip_address": c.ip_address or None,
            "last_seen": c.last_seen,
            "today_download_bytes": c.today_download_bytes,
            "today_upload_bytes": c.today_upload_bytes,
        },
        "support_phone": home.company_phone or None,
    }


@router.get(
    "/home", response={200: MyHomeOut, 401: ErrorOut}, summary="The home screen: money, access, plans, connection"
)
def home(request):
    return home_out(request.subscriber, home_of(request.subscriber))


from . import usage  # noqa: E402,F401 - the usage routes, on the same router
