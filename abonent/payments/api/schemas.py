"""The payments API's request and answer bodies. Money is a string with two decimals, as everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema

from abonent.billing.api.schemas import BalanceOut
from abonent.catalog.api import Money

# A payment or a refund is positive: the sign is the endpoint's (POST /payments adds, a refund takes away).
POSITIVE_MONEY_IN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"


class RefundOut(Schema):
    id: int
    amount: Money
    reason: str
    status: str = Field(description="pending (asked of a gateway), succeeded or failed")
    external_id: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    created_by_id: int | None


class PaymentOut(Schema):
    id: int
    channel: str = Field(description="cash, manual, bank, agent:<code>, or a gateway's code")
    external_id: str
    method: str
    amount: Money
    status: str = Field(description="credited, suspense, returned or cancelled")
    suspense_reason: str = Field(
        description="unknown_account, closed_account, ambiguous, unconfirmed, balance_limit, or empty"
    )
    subscriber_id: int | None
    account_number: str | None = Field(description="The subscriber's account number, once it has a subscriber")
    account_ref: str = Field(description="What the payer gave to say whose account it is (a statement's purpose)")
    payer: str
    payer_inn: str
    received_at: dt.datetime = Field(description="When the channel took the money")
    credited_at: dt.datetime | None
    created_at: dt.datetime
    refunded_amount: Money
    memo: str
    status_reason: str
    taken_by_id: int | None
    candidates: list[int] = Field(
        description="For an ambiguous or unconfirmed payment: the subscribers it could be for"
    )
    statement_id: int | None = Field(description="The bank statement it came in, for the bank channel")


class PaymentDetailOut(PaymentOut):
    refunds: list[RefundOut]


class PaymentPageOut(Schema):
    items: list[PaymentOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null on the last one")


class PaymentListParams(Schema):
    subscriber_id: int | None = Field(None, ge=1, le=2**63 - 1)
    channel: str | None = Field(None, max_length=40)
    status: Literal["credited", "suspense", "returned", "cancelled"] | None = None
    received_from: dt.datetime | None = Field(None, description="Received at or after (ISO 8601)")
    received_to: dt.datetime | None = Field(None, description="Received before (ISO 8601)")
    limit: int = Field(50, ge=1, le=500)
    cursor: str = Field("", max_length=200, description="From the previous page's next_cursor")


class SuspenseParams(Schema):
    limit: int = Field(50, ge=1, le=500)
    cursor: str = Field("", max_length=200)


class PaymentIn(Schema):
    channel: Literal["cash", "manual"] = Field(description="cash: taken at the office; manual: entered by staff")
    subscriber_id: int | None = Field(None, description="The subscriber, or give account_number instead")
    account_number: str | None = Field(None, max_length=20)
    amount: str = Field(..., pattern=POSITIVE_MONEY_IN, examples=["650.00"])
    received_at: dt.datetime | None = Field(None, description="When the money was taken; now when omitted")
    memo: str = Field("", max_length=500)


class PaymentCreatedOut(Schema):
    payment: PaymentOut
    balance: BalanceOut


class RefundIn(Schema):
    amount: str = Field(..., pattern=POSITIVE_MONEY_IN, examples=["100.00"])
    reason: str = Field(..., min_length=1, max_length=500)


class RefundCreatedOut(Schema):
    refund: RefundOut
    payment: PaymentOut
    balance: BalanceOut


class CancelIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)


class AssignIn(Schema):
    subscriber_id: int
    reason: str = Field("", max_length=500)


class StatementOut(Schema):
    id: int
    created: bool = Field(description="false: this very file was imported before; nothing was imported now")
    sha256: str
    filename: str
    encoding: str
    account: str
    date_from: dt.date | None
    date_to: dt.date | None
    uploaded_at: dt.datetime
    documents: int = Field(description="Documents in the file")
    credited: int
    suspense: int = Field(description="No subscriber found, or the one found cannot take it (closed)")
    ambiguous: int = Field(description="Several subscribers match: in suspense with them as candidates")
    broken: int = Field(description="Cannot be read: quarantined with the reason and raw text")
    ignored: int = Field(description="Outgoing, or to an account not ours")
    repeated: int = Field(description="Already imported from an earlier, overlapping statement")
    credited_amount: Money
    suspense_amount: Money
