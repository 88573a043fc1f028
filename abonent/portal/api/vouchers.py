"""The app's prepaid cards: ``POST /vouchers/activate`` credits a top-up card's face value to the token's subscriber.

It requires ``Idempotency-Key`` but is not wrapped in ``api.idempotency.idempotent``: that holds a transaction around
the handler, and the rate limit's attempt row must be written and seen outside one (``vouchers.throttle``; a refused
code's row must also survive the refusal). It uses the same stored answers by hand: a stored answer for the key is
replayed (409 ``idempotency_key_reused`` when it was for another body) before anything is counted, and the answer is
stored inside the activation's transaction, so two requests racing with one key activate one card. The card itself
also makes a retry harmless: the subscriber who activated it gets it back (``created: false``); anyone else 422
``card_used``.
"""

from __future__ import annotations

from django.db import IntegrityError, OperationalError
from django.utils.translation import gettext as _
from ninja import Field, Schema

from abonent.api.errors import ApiError, ErrorOut
from abonent.api.idempotency import request_key, store_answer, stored_answer
from abonent.billing.selectors import get_balance
from abonent.catalog.api import Money
from abonent.core.deadlines import is_deadline
from abonent.vouchers import actions
from abonent.vouchers.throttle import TooManyAttempts

from ..lockout import ip_of
from . import router


class MyVoucherIn(Schema):
    code: str = Field(max_length=40, description="The card's code as printed (dashes and case do not matter)")


class MyVoucherOut(Schema):
    serial: str = Field(description="The card's serial number")
    amount: Money = Field(description="Credited to the account")
    balance: Money = Field(description="The account's balance after it")
    created: bool = Field(description="False: this card was activated for this account before (a retry)")


@router.post(
    "/vouchers/activate",
    response={
        200: MyVoucherOut,
        400: ErrorOut,
        401: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
        503: ErrorOut,
    },
    summary="Activate a prepaid card: its amount is credited to the account",
)
def activate_voucher(request, payload: MyVoucherIn):
    key = request_key(request, required=True)
    subscriber = request.subscriber
    stored = stored_answer(request, key)
    if stored is not None:
        return stored
    answer = {}

    def store(result):
        answer.update(
            serial=result.voucher.serial,
            amount=result.amount,
            balance=get_balance(subscriber).balance,
            created=result.created,
        )
        store_answer(request, key, 200, answer)

    try:
        actions.activate(subscriber, code=payload.code, acting_user=None, client_ip=ip_of(request), then=store)
    except IntegrityError:
        # A request with the same key committed first (the stored answer's unique key): this one rolled back.
        stored = stored_answer(request, key)
        if stored is None:
            raise
        return stored
    except TooManyAttempts as exc:
        raise ApiError(
            429,
            "too_many_attempts",
            _("Too many wrong codes. Try again in %(minutes)s min.") % {"minutes": exc.minutes},
        ) from None
    except OperationalError as exc:
        if not is_deadline(exc):
            raise
        raise ApiError(503, "busy", _("The account is busy; nothing was done. Try again in a few seconds.")) from exc
    return answer
