"""The app's bonuses: ``GET /bonuses`` (points, expiring soon, history, referral code) and ``POST /bonuses/spend``
(points turned into money on the account; ``Idempotency-Key`` required: a retry spends once)."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import idempotent, ledger_key
from abonent.billing.selectors import get_balance
from abonent.bonuses import actions, selectors
from abonent.catalog.api import Money
from abonent.core import clock
from abonent.payments.api.schemas import POSITIVE_MONEY_IN

from ..busy import api_busy_is_503
from . import router


class MyBonusEntryOut(Schema):
    kind: str
    points: Money = Field(description="+ earned, − spent, expired or taken back")
    expires_on: dt.date | None
    created_at: dt.datetime


class MyBonusExpiringOut(Schema):
    day: dt.date
    points: Money


class MyBonusesOut(Schema):
    points: Money = Field(description="Points that can be spent today; one point is worth `point_value` of money")
    point_value: Money
    expiring: list[MyBonusExpiringOut] = Field(description="Points that expire in the next 30 days, by day")
    history: list[MyBonusEntryOut]
    referral_code: str


class MyBonusSpendIn(Schema):
    points: str = Field(
        ..., pattern=POSITIVE_MONEY_IN, examples=["15.00"], description="Points to turn into money on the account"
    )


class MyBonusSpendOut(Schema):
    points: Money = Field(description="Points left")
    balance: Money = Field(description="The account's balance after it")


def _state(subscriber) -> dict:
    from abonent.bonuses.accounts import point_value

    return {
        "points": selectors.spendable_of(subscriber.pk, clock.today()),
        "point_value": point_value(),
        "expiring": [{"day": d, "points": n} for d, n in selectors.expiring_soon(subscriber.pk, clock.today())],
        "history": list(selectors.history_of(subscriber.pk)),
        "referral_code": actions.ensure_referral_code(subscriber.pk),
    }


@router.get("/bonuses", response={200: MyBonusesOut, 401: ErrorOut}, summary="Bonus points")
def my_bonuses(request):
    return _state(request.subscriber)


def _anyone(request, **_kwargs):
    return None


@router.post(
    "/bonuses/spend",
    response={200: MyBonusSpendOut, 400: ErrorOut, 401: ErrorOut, 409: ErrorOut, 422: ErrorOut, 503: ErrorOut},
    summary="Spend bonus points on services",
)
@api_busy_is_503
@idempotent(200, required=True, access=_anyone)
def spend_bonuses(request, payload: MyBonusSpendIn):
    subscriber = request.subscriber
    actions.do_spend_points(subscriber, points=payload.points, key=ledger_key(request, "bonus_spend"), acting_user=None)
    return {"points": selectors.spendable_of(subscriber.pk, clock.today()), "balance": get_balance(subscriber).balance}
