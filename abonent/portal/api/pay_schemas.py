"""The bodies of the app's Pay API (``api/payments.py``): what each route takes and answers, for OpenAPI."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema

from abonent.catalog.api import Money

from .. import pay_data

MONEY_IN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"


class MySuggestedOut(Schema):
    amount: Money = Field(description="What to pay so the balance covers the coming month, whole roubles; 0: covered")
    fees: Money = Field(description="The charges due from today until `until` (exclusive)")
    balance: Money
    promised: Money = Field(description="An open promised payment (in the balance; the next payment repays it)")
    until: dt.date
    next_charge_on: dt.date | None
    max_amount: Money = Field(description="The largest online payment")
    online_payments_available: bool = Field(description="False: no gateway is configured, POST /payments is a 422")
    save_consent_text: str = Field(
        description="Show this when offering to save the card; send it back verbatim as consent_text"
    )


class MyPaymentIn(Schema):
    amount: str = Field(..., pattern=MONEY_IN, description='Roubles, e.g. "650" or "650.50"', examples=["650.00"])
    method_type: Literal["bank_card", "sbp"] = Field("bank_card", description="bank_card, or sbp for a QR code")
    save_method: bool = Field(False, description="Save the card for autopay (bank_card only; needs consent_text)")
    consent_text: str = Field("", max_length=5000, description="The consent the subscriber was shown, verbatim")
    return_url: str = Field(
        "", max_length=2000, description="Where the gateway's page returns the payer; empty: the portal's page of it"
    )


class MyPaymentOut(Schema):
    id: int
    amount: Money
    status: str = Field(description="pending, succeeded or failed")
    method_type: str | None
    confirmation_url: str | None = Field(description="bank_card: the gateway's page to open")
    qr_payload: str | None = Field(description="sbp: the QR code's content, also a link that opens a bank's app")
    save_method: bool
    payment_id: int | None = Field(description="The payment credited (see /receipts) once the money came")
    failure_code: str | None = Field(description="Why it was not paid (the gateway's reason code)")
    failure_reason: str | None = Field(description="The same in words, for the subscriber")
    balance: Money | None = Field(description="The balance now, once paid")
    created_at: dt.datetime
    finished_at: dt.datetime | None


class MySavedMethodOut(Schema):
    id: int
    type: str = Field(alias="method_type", description="bank_card, sbp, …")
    title: str = Field(description='As the gateway names it, masked: "Bank card *4444"')
    active: bool
    consent_text: str
    consented_at: dt.datetime
    unlinked_at: dt.datetime | None


class MyAutopayOut(Schema):
    enabled: bool
    method_id: int
    mode: str = Field(description="day: on debit_day of each month; low_balance: when the balance runs short")
    debit_day: int
    amount_mode: str = Field(description="cover: what covers the fees until the next debit; fixed: fixed_amount")
    fixed_amount: Money | None
    max_amount: Money | None = Field(description="The most debited at once; null: the system's limit")
    enabled_at: dt.datetime
    disabled_at: dt.datetime | None
    stop_reason: str


class MyAutopayAttemptOut(Schema):
    id: int
    date: dt.date = Field(description="When it was debited (or is to be)")
    amount: Money | None
    status: str = Field(description="scheduled, processing, succeeded, declined, failed, skipped, cancelled")
    status_label: str
    decline_code: str


class MyAutopayStateOut(Schema):
    autopay: MyAutopayOut | None
    methods: list[MySavedMethodOut] = Field(description="The saved cards that can be used (not unlinked ones)")
    attempts: list[MyAutopayAttemptOut] = Field(description="The newest debits first")
    consent_text: str = Field(description="Show this before turning autopay on; send it back verbatim in PUT")


class MyAutopayIn(Schema):
    method_id: int
    mode: Literal["day", "low_balance"] = "day"
    debit_day: int | None = Field(None, description="1–31, needed for mode=day; past a month's end: its last day")
    amount_mode: Literal["cover", "fixed"] = "cover"
    fixed_amount: str | None = Field(None, pattern=MONEY_IN, examples=["650.00"])
    max_amount: str | None = Field(None, pattern=MONEY_IN)
    consent_text: str = Field(..., max_length=5000, description="The consent shown (GET /autopay's), verbatim")


class MyReceiptOut(Schema):
    id: int
    operation: str = Field(description="sell (income) or sell_refund (return of income)")
    state: str = Field(description="registered, pending or not_required")
    amount: Money
    receipt_datetime: dt.datetime | None = Field(description="Tag 1012")
    fiscal_total: Money | None = Field(description="Tag 1020")
    fiscal_receipt_number: int | None = Field(description="The receipt's number in the shift (tag 1042)")
    shift_number: int | None = Field(description="Tag 1038")
    fn_number: str = Field(description="The fiscal drive (FN, tag 1041)")
    fiscal_document_number: int | None = Field(description="FD, tag 1040")
    fiscal_document_attribute: int | None = Field(description="FP, tag 1077")
    ecr_registration_number: str = Field(description="The cash register's registration number (tag 1037)")
    fns_site: str = Field(description="Tag 1060")
    qr_text: str = Field(description="The FNS check QR code's text, once registered")
    check_url: str = Field(description="The receipt at the OFD's check page, where configured")


class MyPaymentReceiptsOut(Schema):
    payment_id: int
    amount: Money
    received_at: dt.datetime
    method: str
    method_label: str
    status: str = Field(description="credited, cancelled, returned")
    receipt_state: str = Field(description="registered, pending, not_required or none")
    receipts: list[MyReceiptOut]


class MyReceiptsOut(Schema):
    items: list[MyPaymentReceiptsOut]
    next_cursor: str | None = Field(description="Pass as cursor for the earlier payments")


class MyReceiptParams(Schema):
    cursor: str = Field("", max_length=200)
    limit: int = Field(pay_data.RECEIPTS_PAGE, ge=1, le=100)


class MyStatementParams(Schema):
    date_from: dt.date = Field(..., alias="from", description="The first day, YYYY-MM-DD")
    date_to: dt.date = Field(..., alias="to", description="The last day (included); at most three years later")


class MyStatementLineOut(Schema):
    date: dt.date
    kind: str = Field(description="payment, fee, plan_change, freeze, refund, promised_take, reversal, …")
    kind_label: str
    description: str
    amount: Money = Field(description="Positive: to the account; negative: off it")
    balance_after: Money
    reversed: bool = Field(description="A later line reverses this one")


class MyStatementOut(Schema):
    date_from: dt.date
    date_to: dt.date
    opening_balance: Money
    credits: Money
    debits: Money = Field(description="Negative")
    closing_balance: Money = Field(description="opening_balance + credits + debits")
    lines: list[MyStatementLineOut]
