"""Writes of bonus points. Every movement is a ``BonusEntry`` and its ledger transaction, written together:

- earned (on-time payment, tenure anniversary, a referred subscriber's payment): bonus expense (−) → bonus
  liability (+), kind BONUS_ACCRUAL;
- spent on services: liability (−) → the subscriber's account (+, money for fees), BONUS_SPEND;
- expired (FIFO, ``selectors.unexpired_by``) or taken back when the payment is cancelled: liability (−) → expense
  (+), BONUS_EXPIRY.

Each entry's ``source_key`` (and the ledger key ``bonus:<source_key>``) is unique: a payment accrues once, an
anniversary once, a day's expiry once, a spend's key once. A subscriber's entries are written under their ledger
account's row lock, so a spend checks the balance it cannot then overdraw. ``acting_user=None`` is the system or
the subscriber in the portal.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import ledger
from abonent.billing.actions.common import _check, _positive_amount
from abonent.billing.calculations import add_months
from abonent.billing.models import LedgerAccount, Posting, Subscription, TransactionKind
from abonent.core import audit, clock, events
from abonent.core.deadlines import db_deadline
from abonent.core.money import quantize
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.models import Subscriber, SubscriberStatus

from . import accounts, selectors
from .models import ACCRUALS, BonusEntry, BonusRules, EntryKind, Referral, ReferralCode, TenureUnit

ZERO = Decimal("0.00")
LOCK_S = 3
STATEMENT_S = 15
_TX_KIND = {
    EntryKind.ON_TIME: TransactionKind.BONUS_ACCRUAL,
    EntryKind.TENURE: TransactionKind.BONUS_ACCRUAL,
    EntryKind.REFERRAL: TransactionKind.BONUS_ACCRUAL,
    EntryKind.SPEND: TransactionKind.BONUS_SPEND,
    EntryKind.EXPIRY: TransactionKind.BONUS_EXPIRY,
    EntryKind.CLAWBACK: TransactionKind.BONUS_EXPIRY,
}


def _write(
    subscriber_id: int,
    kind: str,
    points: Decimal,
    source_key: str,
    *,
    on: dt.date,
    memo: str,
    acting_user=None,
    payment_id: int | None = None,
) -> tuple[BonusEntry, bool]:
    """One entry and its ledger transaction; the existing entry when ``source_key`` was written before. The caller
    holds the subscriber's ledger account lock."""
    existing = BonusEntry.objects.filter(source_key=source_key).first()
    if existing is not None:
        return existing, False
    points = quantize(points)
    money = accounts.money_of(abs(points))
    liability, expense = accounts.liability_account().pk, accounts.expense_account().pk
    if kind in ACCRUALS:
        legs = [(liability, money), (expense, -money)]
    elif kind == EntryKind.SPEND:
        legs = [(ledger.subscriber_account(subscriber_id).pk, money), (liability, -money)]
    else:
        legs = [(liability, -money), (expense, money)]
    rules = selectors.rules()
    expires_on = add_months(on, rules.expiry_months) if kind in ACCRUALS and rules.expiry_months else None
    user = acting_user if getattr(acting_user, "pk", None) else None
    tx, _created = ledger.post(
        key=f"bonus:{source_key}"[:200],
        kind=_TX_KIND[kind],
        effective_date=on,
        legs=legs,
        subscriber_id=subscriber_id,
        acting_user=user,
        memo=memo,
    )
    entry = BonusEntry.objects.create(
        subscriber_id=subscriber_id, kind=kind, points=points, expires_on=expires_on, source_key=source_key,
        payment_id=payment_id, transaction=tx, acting_user=user, memo=memo[:500], created_at=clock.now(),
    )  # fmt: skip
    return entry, True


def _lock(subscriber_id: int) -> LedgerAccount:
    db_deadline(lock=LOCK_S, statement=STATEMENT_S, unless_set=True)
    return ledger.subscriber_account(subscriber_id, lock=True)


# --- earning ------------------------------------------------------------------------------------------------------


def _balance_before(account_id: int, tx_id: int) -> Decimal:
    """The account's balance just before transaction ``tx_id`` (ids grow with time): whether the payer was in debt
    when the money arrived, the same answer however late or often it is asked."""
    total = Posting.objects.filter(account_id=account_id, transaction_id__lt=tx_id).aggregate(s=Sum("amount"))["s"]
    return quantize(total or ZERO)


@transaction.atomic
def do_accrue_for_payment(payment_id: int) -> list[BonusEntry]:
    """The points a credited payment earns: the payer's for paying on time (the balance was not in debt when it
    arrived), the referrer's share in the referral period. Keyed by the payment's ledger transaction: a retried
    notice, a replayed event or the catch-up sweep accrue once."""
    from abonent.payments.models import Payment, PaymentStatus

    rules = selectors.rules()
    if not (rules.on_time_enabled or rules.referral_enabled):
        return []  # one query per payment while bonuses are off
    payment = Payment.objects.filter(pk=payment_id, status=PaymentStatus.CREDITED).first()
    if payment is None or payment.subscriber_id is None:
        return []
    credit_tx = payment.assign_transaction_id or payment.transaction_id
    paid_on = timezone.localdate(payment.credited_at or payment.received_at)
    written = []
    account = _lock(payment.subscriber_id)
    if rules.on_time_enabled and _balance_before(account.pk, credit_tx) >= 0:
        points = quantize(rules.on_time_points + payment.amount * rules.on_time_percent / 100)
        if points > 0:
            entry, created = _write(
                payment.subscriber_id, EntryKind.ON_TIME, points, f"on_time:{credit_tx}", on=paid_on,
                memo=_("Paid on time"), payment_id=payment.pk,
            )  # fmt: skip
            if created:
                written.append(entry)
    referral = Referral.objects.filter(referred_id=payment.subscriber_id).first()
    if (
        rules.referral_enabled
        and referral is not None
        and referral.since <= paid_on < add_months(referral.since, rules.referral_months)
    ):
        points = quantize(payment.amount * rules.referral_percent / 100)
        if points > 0:
            _lock(referral.referrer_id)
            entry, created = _write(
                referral.referrer_id, EntryKind.REFERRAL, points, f"referral:{credit_tx}", on=paid_on,
                memo=_("Payment of referred subscriber %(account)s") % {"account": payment.subscriber.account_number},
                payment_id=payment.pk,
            )  # fmt: skip
            if created:
                written.append(entry)
    return written


@transaction.atomic
def do_take_back_for_payment(payment_id: int) -> list[BonusEntry]:
    """A cancelled payment's points taken back, as far as they are still there: points already spent on fees are
    not (the fees were paid with them; the cancelled money itself is gone from the balance already). Once per
    accrual (``clawback:<entry>``)."""
    written = []
    for accrual in BonusEntry.objects.filter(payment_id=payment_id, kind__in=ACCRUALS).order_by("pk"):
        _lock(accrual.subscriber_id)
        available = selectors.balance_of(accrual.subscriber_id)
        points = min(accrual.points, available)
        if points <= 0 or BonusEntry.objects.filter(source_key=f"clawback:{accrual.pk}").exists():
            continue
        entry, created = _write(
            accrual.subscriber_id, EntryKind.CLAWBACK, -points, f"clawback:{accrual.pk}", on=clock.today(),
            memo=_("Payment cancelled"), payment_id=payment_id,
        )  # fmt: skip
        if created:
            written.append(entry)
    return written


def tenure_of(started_on: dt.date, today: dt.date, unit: str) -> int:
    """Full years or months from ``started_on`` to ``today``."""
    months = (today.year - started_on.year) * 12 + today.month - started_on.month
    if add_months(started_on, months) > today:
        months -= 1
    return months // 12 if unit == TenureUnit.YEAR else months


def do_accrue_tenure(today: dt.date | None = None) -> int:
    """Each active subscriber's points for the anniversary reached (the worker's daily job), from their first
    subscription's start: once per anniversary (``tenure:<subscriber>:<unit>:<n>``). Only the latest anniversary
    counts: turning the rule on does not pay for years gone by."""
    today = today or clock.today()
    rules = selectors.rules()
    if not rules.tenure_enabled or rules.tenure_points <= 0:
        return 0
    firsts = (
        Subscription.objects.filter(subscriber__status=SubscriberStatus.ACTIVE)
        .values("subscriber_id")
        .annotate(first=Min("started_on"))
    )
    done = 0
    for row in firsts:
        n = tenure_of(row["first"], today, rules.tenure_unit)
        if n < 1:
            continue
        key = f"tenure:{row['subscriber_id']}:{rules.tenure_unit}:{n}"
        if BonusEntry.objects.filter(source_key=key).exists():
            continue  # the common case, read without a lock; the unique key decides under one
        with transaction.atomic():
            _lock(row["subscriber_id"])
            _entry, created = _write(
                row["subscriber_id"], EntryKind.TENURE, rules.tenure_points, key, on=today,
                memo=_("Anniversary with us: %(n)s") % {"n": n},
            )  # fmt: skip
            done += created
    return done


def do_expire_points(today: dt.date | None = None) -> int:
    """Points whose last day was before ``today`` and that were not used, first in first out (the worker's daily
    job): one entry per subscriber and day (``expiry:<subscriber>:<day>``). Returns how many subscribers."""
    today = today or clock.today()
    subscriber_ids = (
        BonusEntry.objects.filter(kind__in=ACCRUALS, expires_on__lt=today)
        .values_list("subscriber_id", flat=True)
        .distinct()
    )
    done = 0
    for subscriber_id in list(subscriber_ids):
        with transaction.atomic():
            _lock(subscriber_id)
            points = selectors.unexpired_by(subscriber_id, today - dt.timedelta(days=1))
            if points <= 0:
                continue
            _entry, created = _write(
                subscriber_id, EntryKind.EXPIRY, -points, f"expiry:{subscriber_id}:{today.isoformat()}", on=today,
                memo=_("Points expired"),
            )  # fmt: skip
            done += created
    return done


# --- spending -----------------------------------------------------------------------------------------------------


@transaction.atomic
def do_spend_points(subscriber, *, points, key: str, acting_user) -> BonusEntry:
    """Turn ``points`` into money on the subscriber's account (for fees). ``key`` makes a retry return the first
    spend. More than the bonus balance is refused (422 ``bonus_insufficient``) and nothing is written."""
    _check(acting_user, Perm.BONUS_MANAGE, subscriber)
    points = _positive_amount(points, "points")
    if subscriber.is_closed:
        raise ValidationError({"points": ValidationError(_("The account is closed."), code="subscriber_closed")})
    _lock(subscriber.pk)
    source_key = f"spend:{key}"
    existing = BonusEntry.objects.filter(source_key=source_key).first()
    if existing is not None:
        if existing.subscriber_id != subscriber.pk or existing.points != -points:
            raise ValidationError(
                {"points": ValidationError(_("This request was already made with other points."), code="key_reused")}
            )
        return existing
    available = selectors.balance_of(subscriber.pk)
    if points > available:
        raise ValidationError(
            {
                "points": ValidationError(
                    _("Only %(available)s points are available.") % {"available": available}, code="bonus_insufficient"
                )
            }
        )
    entry, _created = _write(
        subscriber.pk, EntryKind.SPEND, -points, source_key, on=clock.today(), memo=_("Points spent on services"),
        acting_user=acting_user,
    )  # fmt: skip
    audit.record(
        actor=acting_user, action="bonuses.spent", obj=entry, subscriber_id=subscriber.pk,
        after={"points": points, "amount": accounts.money_of(points)},
    )  # fmt: skip
    events.emit("billing.balance_changed", subscriber_id=subscriber.pk, credit=True)
    return entry


# --- rules and referrals -----------------------------------------------------------------------------------------

RULE_FIELDS = [f.name for f in BonusRules._meta.fields if f.name not in ("id", "updated_at", "updated_by")]


@transaction.atomic
def do_update_rules(*, acting_user, **values) -> BonusRules:
    check_perm(acting_user, Perm.BONUS_MANAGE)
    rules, _created = BonusRules.objects.select_for_update().get_or_create(pk=1)
    before = audit.snapshot(rules, RULE_FIELDS)
    for name, value in values.items():
        if name not in RULE_FIELDS:
            raise TypeError(f"unknown rule {name}")
        setattr(rules, name, value)
    rules.updated_at, rules.updated_by = clock.now(), acting_user
    rules.full_clean(exclude=["updated_by"])
    rules.save()
    audit.record(actor=acting_user, action="bonuses.rules_changed", obj=rules, before=before,
                 after=audit.snapshot(rules, RULE_FIELDS))  # fmt: skip
    return rules


def find_referrer(text: str) -> Subscriber | None:
    """A referrer by referral code or account number (as staff type what the new subscriber says)."""
    text = (text or "").strip()
    if not text:
        return None
    return Subscriber.objects.filter(Q(referral_code__code=text.upper()) | Q(account_number=text)).first()


@transaction.atomic
def do_set_referrer(subscriber, *, referrer_ref: str, acting_user, since: dt.date | None = None) -> Referral:
    """Record who referred ``subscriber`` (console, BONUS_MANAGE); the referral period starts ``since`` (today)."""
    _check(acting_user, Perm.BONUS_MANAGE, subscriber)
    referrer = find_referrer(referrer_ref)
    if referrer is None:
        raise ValidationError({"referrer": ValidationError(_("No subscriber has this code or account number."),
                                                           code="referrer_unknown")})  # fmt: skip
    if referrer.pk == subscriber.pk:
        raise ValidationError({"referrer": ValidationError(_("A subscriber cannot refer themselves."),
                                                           code="referrer_self")})  # fmt: skip
    if Referral.objects.filter(referred=subscriber).exists():
        raise ValidationError({"referrer": ValidationError(_("The referrer is already recorded."),
                                                           code="referral_exists")})  # fmt: skip
    try:
        with transaction.atomic():
            referral = Referral.objects.create(
                referred=subscriber, referrer=referrer, since=since or clock.today(), set_by=acting_user,
                created_at=clock.now(),
            )  # fmt: skip
    except IntegrityError:
        raise ValidationError({"referrer": ValidationError(_("The referrer is already recorded."),
                                                           code="referral_exists")}) from None  # fmt: skip
    audit.record(actor=acting_user, action="bonuses.referrer_set", obj=referral, subscriber_id=subscriber.pk,
                 after={"referrer": referrer.account_number, "since": referral.since})  # fmt: skip
    return referral


_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def ensure_referral_code(subscriber_id: int) -> str:
    """The subscriber's referral code, made on first use (8 characters of a readable alphabet)."""
    existing = selectors.referral_code_of(subscriber_id)
    if existing:
        return existing
    for _attempt in range(5):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                ReferralCode.objects.create(subscriber_id=subscriber_id, code=code)
            return code
        except IntegrityError:
            existing = selectors.referral_code_of(subscriber_id)
            if existing:
                return existing
    raise RuntimeError("could not allocate a referral code")
