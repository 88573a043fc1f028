"""What a document says: the seller and buyer blocks, the lines of a month, VAT, the total in words.

Pure functions of values, except the two readers at the bottom (``month_lines``, ``next_month_lines``), which read a
subscriber's charges and prices. Money is ``Decimal`` with two places; a snapshot stores it as strings.

VAT is included in the price (ISP fees are quoted with VAT): a line's VAT is amount × r / (100 + r), rounded
half-up per line, and the document's VAT is the sum of its lines'. The rate is the dated one of
``ABONENT_FISCAL_VAT_RATES`` for the service's date (20 % until 2025, 22 % from 2026-01-01 by 425-FZ), read through
the fiscal receipts' own parser, so receipts and documents never disagree; a seller that pays no VAT
(``ABONENT_FISCAL_VAT=none`` or a simplified tax system) prints «Без НДС».
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.utils import translation
from num2words import num2words

from abonent.billing.calculations import add_months
from abonent.core.company import company_details
from abonent.core.money import ZERO, quantize
from abonent.payments.fiscal.content import VAT_RATES, vat_code_for

MONTHS_RU = (
    "январь", "февраль", "март", "апрель", "май", "июнь",
    "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
)  # fmt: skip
NO_VAT = "Без НДС"
UNIT_MONTH = "мес."
UNIT_SERVICE = "усл. ед."
# OKEI codes for the счёт-фактура's unit column (ОК 015-94): 362 «мес», 796 «шт»; services use «—» when none fits.
OKEI = {UNIT_MONTH: "362", UNIT_SERVICE: "—"}


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    """The month of ``month`` as ``[first day, first day of the next)``."""
    start = month.replace(day=1)
    return start, add_months(start, 1)


def month_name_ru(day: dt.date) -> str:
    return f"{MONTHS_RU[day.month - 1]} {day.year} г."


def vat_rate_on(day: dt.date) -> int | None:
    """The VAT rate in percent for a service rendered on ``day``; ``None`` when the seller pays no VAT."""
    code = vat_code_for(day)
    return None if code == "none" else VAT_RATES[code]


def vat_of(amount: Decimal, rate: int | None) -> Decimal | None:
    """The VAT inside ``amount`` (VAT included): amount × r / (100 + r), half-up to kopecks."""
    if rate is None:
        return None
    return quantize(amount * rate / (100 + rate))


def vat_label(rate: int | None) -> str:
    return NO_VAT if rate is None else f"{rate}%"


def make_line(name: str, amount: Decimal, *, rate: int | None, quantity: int = 1, unit: str = UNIT_MONTH) -> dict:
    amount = quantize(amount)
    vat = vat_of(amount, rate)
    return {
        "service": name,
        "quantity": quantity,
        "unit": unit,
        "okei": OKEI.get(unit, "—"),
        "price": str(quantize(amount / quantity)),
        "amount": str(amount),
        "vat_rate": rate,
        "vat_label": vat_label(rate),
        "vat_amount": None if vat is None else str(vat),
        "amount_net": str(amount - (vat or ZERO)),
    }


def totals(lines: list[dict]) -> tuple[Decimal, Decimal | None]:
    """The document's total and its VAT (the sum of the lines' rounded VAT; ``None`` when no line has VAT)."""
    total = sum((Decimal(line["amount"]) for line in lines), ZERO)
    vats = [Decimal(line["vat_amount"]) for line in lines if line["vat_amount"] is not None]
    return quantize(total), (quantize(sum(vats, ZERO)) if vats else None)


def _plural_ru(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def amount_in_words(amount: Decimal) -> str:
    """«Шестьсот пятьдесят рублей 00 копеек»: roubles in words (num2words), kopecks in figures, as on Russian
    invoices. A negative amount (a correction that lowers) is written «минус …»."""
    amount = quantize(amount)
    sign = "минус " if amount < 0 else ""
    amount = abs(amount)
    roubles = int(amount)
    kopecks = int((amount - roubles) * 100)
    words = sign + num2words(roubles, lang="ru")
    text = (
        f"{words} {_plural_ru(roubles, 'рубль', 'рубля', 'рублей')} "
        f"{kopecks:02d} {_plural_ru(kopecks, 'копейка', 'копейки', 'копеек')}"
    )
    return text[:1].upper() + text[1:]


def seller_block() -> dict:
    """The company as it is now: the first-run wizard's details in the database, else the settings
    (``core.company``). Stored in each document, so a later change is not retroactive."""
    return company_details().as_dict()


def buyer_block(subscriber) -> dict:
    """The buyer: an organisation's name, ИНН/КПП and legal (registration) address, else the person's name."""
    with translation.override("ru"):  # the forms are Russian: «д. 5, кв. 12», whatever the user's language
        addresses = {a.kind: a.as_text() for a in reversed(list(subscriber.addresses.all()))}
    address = addresses.get("registration") or addresses.get("postal") or addresses.get("service") or ""
    contract = subscriber.contracts.filter(status="active").order_by("signed_on", "id").first()
    return {
        "name": subscriber.organization_name or subscriber.display_name,
        "inn": subscriber.inn,
        "kpp": subscriber.kpp,
        "address": address,
        "account_number": subscriber.account_number,
        "contract": f"№ {contract.number} от {contract.signed_on:%d.%m.%Y}" if contract else "",
    }


# --- Reading the month ---------------------------------------------------------------------------------------


def month_lines(subscriber, month: dt.date) -> list[dict]:
    """The services rendered in the month: one line per service, the net of its charges whose ledger date falls
    in the month (fees, proration, activation, usage, time, turbo; discounts and reversals reduce) plus one-off
    services and their reversals posted to the service's revenue account. A service whose net is not positive
    prints no line (a month credited back in full has nothing to act)."""
    from abonent.billing.models import Charge, LedgerTransaction, Posting

    start, end = month_bounds(month)
    rate = vat_rate_on(end - dt.timedelta(days=1))
    net: dict[str, Decimal] = defaultdict(lambda: ZERO)
    charges = Charge.objects.filter(
        subscription__subscriber_id=subscriber.pk,
        transaction__effective_date__gte=start,
        transaction__effective_date__lt=end,
    ).values_list("subscription__service__name", "amount")
    for service, amount in charges:
        net[service] += amount
    # Transactions of this subscriber with no charge rows (one-off services and their reversals): what their
    # revenue legs credited, per service. Batch fee transactions name no subscriber, event charges have rows.
    loose = LedgerTransaction.objects.filter(
        subscriber_id=subscriber.pk, effective_date__gte=start, effective_date__lt=end, charges__isnull=True
    ).values("pk")
    revenue = Posting.objects.filter(
        transaction_id__in=loose, account__kind="revenue", account__service__isnull=False
    ).values_list("account__service__name", "amount")
    for service, amount in revenue:
        net[service] += -amount  # a credit to revenue (negative posting) is a charge to the subscriber
    period = month_name_ru(start)
    return [
        make_line(f"{service} за {period}", amount, rate=rate) for service, amount in sorted(net.items()) if amount > 0
    ]


def next_month_lines(subscriber, month: dt.date) -> list[dict]:
    """An invoice for prepayment of the month after ``month``: each current subscription's monthly fee on the
    first day of that month (the price then in force)."""
    from abonent.billing.selectors import current_subscriptions
    from abonent.catalog.selectors import NoPriceError, price_on

    start, _end = month_bounds(add_months(month.replace(day=1), 1))
    rate = vat_rate_on(start)
    lines = []
    for subscription in current_subscriptions(subscriber).order_by("id"):
        try:
            price = price_on(subscription.plan_id, start)
        except NoPriceError:
            continue
        if price.monthly_fee > 0:
            name = f"{subscription.plan.service.name} (тариф «{subscription.plan.name}») за {month_name_ru(start)}"
            lines.append(make_line(name, price.monthly_fee, rate=rate))
    return lines
