"""Writes of bonus points. Every movement is a ``BonusEntry`` and its ledger transaction, written together:

- earned (on-time payment, tenure anniversary, a referred subscriber's payment): bonus expense (−) → bonus
  liability (+), kind BONUS_ACCRUAL;
- spent on services: liability (−) → the subscriber's account (+, money for fees), BONUS_SPEND;
- expired (FIFO, ``selectors.lots_of``) or taken back when the payment is cancelled or refunded: liability (−) →
  expense (+), BONUS_EXPIRY; points of the payment already spent are taken back as their money off the account
  (account (−) → expense (+)), so a cancelled payment leaves no money that was never paid.

The money of an entry is the change in the subscriber's rounded liability (``money_of`` of their balance before and
after), so points worth fractions of a kopeck never pay out more than they are worth in all; an entry that does
not change it posts nothing. A spend worth less than half a kopeck is refused, an accrual of that little skipped.

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
from django.db.models import Max, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import ledger
from abonent.billing.actions.common import _check, _positive_amount
from abonent.billing.calculations import add_months
from abonent.billing.models import (
    LedgerAccount,
    LedgerTransaction,
    Posting,
    PromisedPayment,
    Subscription,
    TransactionKind,
)
from abonent.core import audit, clock, events
from abonent.core.deadlines import db_deadline
from abonent.core.money import quantize
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.models import Subscriber, SubscriberStatus
from abonent.subscribers.selectors import visible_subscribers

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
    payment_base: Decimal | None = None,
    lot: BonusEntry | None = None,
    charged_points: Decimal = ZERO,
) -> tuple[BonusEntry, bool]:
    """One entry and its ledger transaction (none when it moves no money: the subscriber's rounded liability stays as
    it was and nothing is charged); the existing entry when ``source_key`` was written before. The caller holds the
    subscriber's ledger account lock."""
    existing = BonusEntry.objects.filter(source_key=source_key).first()
    if existing is not None:
        return existing, False
    points = quantize(points)
    held = selectors.balance_of(subscriber_id)
    change = accounts.money_of(held + points) - accounts.money_of(held)
    liability, expense = accounts.liability_account().pk, accounts.expense_account().pk
    other = ledger.subscriber_account(subscriber_id).pk if kind == EntryKind.SPEND else expense
    legs = [(liability, change), (other, -change)]
    charged = accounts.money_of(charged_points)
    if charged:
        legs += [(ledger.subscriber_account(subscriber_id).pk, -charged), (expense, charged)]
    rules = selectors.rules()
    expires_on = add_months(on, rules.expiry_months) if kind in ACCRUALS and rules.expiry_months else None
    user = acting_user if getattr(acting_user, "pk", None) else None
    tx = None
    if change or charged:
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
        payment_id=payment_id, payment_base=payment_base, lot=lot, charged_points=quantize(charged_points),
        transaction=tx, acting_user=user, memo=memo[:500], created_at=clock.now(),
    )  # fmt: skip
    return entry, True


def _worth_a_kopeck(points: Decimal) -> bool:
    return accounts.money_of(points) > 0


def _lock(subscriber_id: int) -> LedgerAccount:
    db_deadline(lock=LOCK_S, statement=STATEMENT_S, unless_set=True)
    return ledger.subscriber_account(subscriber_id, lock=True)


# --- earning ------------------------------------------------------------------------------------------------------


def _balance_before(account_id: int, subscriber_id: int, tx_id: int) -> Decimal:
    """The subscriber's own balance just before transaction ``tx_id`` (ids grow with time): whether the payer was in
    debt when the money arrived, the same answer however late or often it is asked. A promised payment open then is
    the ISP's money lent, not the subscriber's: its credit does not make a debtor punctual."""
    total = Posting.objects.filter(account_id=account_id, transaction_id__lt=tx_id).aggregate(s=Sum("amount"))["s"]
    lent = (
        PromisedPayment.objects.filter(subscriber_id=subscriber_id, take_transaction_id__lt=tx_id)
        .filter(Q(close_transaction__isnull=True) | Q(close_transaction_id__gt=tx_id))
        .aggregate(s=Sum("amount"))["s"]
    )
    return quantize((total or ZERO) - (lent or ZERO))


def _credit_of(payment) -> int:
    return payment.assign_transaction_id or payment.transaction_id


@transaction.atomic
def do_accrue_for_payment(payment_id: int) -> list[BonusEntry]:
    """The points a credited payment earns: the payer's for paying on time (their own balance was not in debt when
    it arrived), the referrer's share in the referral period (not for a closed referrer). Counted on the amount
    less what was refunded by then. Keyed by the payment's ledger transaction: a retried notice, a replayed event or
    the catch-up sweep accrue once."""
    from abonent.payments.models import Payment, PaymentStatus

    rules = selectors.rules()
    if not (rules.on_time_enabled or rules.referral_enabled):
        return []  # one query per payment while bonuses are off
    payment = Payment.objects.filter(pk=payment_id, status=PaymentStatus.CREDITED).first()
    if payment is None or payment.subscriber_id is None:
        return []
    account = _lock(payment.subscriber_id)
    # Read again under the lock a cancel or refund takes too: one that committed while this waited is seen, and
    # one that comes after finds these points to take back.
    payment = Payment.objects.filter(pk=payment_id, status=PaymentStatus.CREDITED).select_related("subscriber").first()
    if payment is None or payment.subscriber_id != account.subscriber_id:
        return []
    base = quantize(payment.amount - payment.refunded_amount)
    if base <= 0:
        return []
    credit_tx = _credit_of(payment)
    paid_on = timezone.localdate(payment.credited_at or payment.received_at)
    written = []
    if rules.on_time_enabled and _balance_before(account.pk, payment.subscriber_id, credit_tx) >= 0:
        points = quantize(rules.on_time_points + base * rules.on_time_percent / 100)
        if _worth_a_kopeck(points):
            entry, created = _write(
                payment.subscriber_id, EntryKind.ON_TIME, points, f"on_time:{credit_tx}", on=paid_on,
                memo=_("Paid on time"), payment_id=payment.pk, payment_base=base,
            )  # fmt: skip
            if created:
                written.append(entry)
    referral = Referral.objects.filter(referred_id=payment.subscriber_id).select_related("referrer").first()
    if (
        rules.referral_enabled
        and referral is not None
        and not referral.referrer.is_closed
        and referral.since <= paid_on < add_months(referral.since, rules.referral_months)
    ):
        points = quantize(base * rules.referral_percent / 100)
        if _worth_a_kopeck(points):
            _lock(referral.referrer_id)
            entry, created = _write(
                referral.referrer_id, EntryKind.REFERRAL, points, f"referral:{credit_tx}", on=paid_on,
                memo=_("Payment of referred subscriber %(account)s") % {"account": payment.subscriber.account_number},
                payment_id=payment.pk, payment_base=base,
            )  # fmt: skip
            if created:
                written.append(entry)
    return written


def _take_back_due(accrual: BonusEntry, payment) -> Decimal:
    """Points of ``accrual`` to be taken back in all: its share of what left the payment since it was counted (all
    of them once the payment is cancelled or no longer credited by the transaction it was counted on)."""
    from abonent.payments.models import PaymentStatus

    base = accrual.payment_base or payment.amount
    credit_tx = accrual.source_key.rsplit(":", 1)[-1]
    if payment.status != PaymentStatus.CREDITED or str(_credit_of(payment)) != credit_tx:
        kept = ZERO
    else:
        kept = min(base, payment.amount - payment.refunded_amount)
    return quantize(accrual.points * (base - kept) / base)


def _taken_back(accrual: BonusEntry) -> Decimal:
    """Points of ``accrual`` already taken back in all: the last take-back's key carries the running total."""
    totals = [ZERO]
    for key in BonusEntry.objects.filter(lot=accrual).values_list("source_key", flat=True):
        totals.append(Decimal(key.rsplit(":", 1)[-1]))
    if BonusEntry.objects.filter(source_key=f"clawback:{accrual.pk}").exists():
        totals.append(accrual.points)  # before running totals: one take-back of the whole accrual
    return max(totals)


@transaction.atomic
def do_take_back_for_payment(payment_id: int) -> list[BonusEntry]:
    """A cancelled or refunded payment's points taken back: of a refund, the refunded share. What of the lot is
    unused is taken back as points; what of it was spent on services is taken back as that money off the account
    (the fees were paid with money that was never paid in); what of it expired is gone already. Each step once:
    ``clawback:<accrual>:<points taken back in all>``."""
    from abonent.payments.models import Payment

    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        return []
    written = []
    for accrual in BonusEntry.objects.filter(payment_id=payment_id, kind__in=ACCRUALS).order_by("pk"):
        due = _take_back_due(accrual, payment)
        if due <= _taken_back(accrual):
            continue  # the common case, read without a lock; the unique key decides under one
        _lock(accrual.subscriber_id)
        payment.refresh_from_db()
        due, done = _take_back_due(accrual, payment), _taken_back(accrual)
        if due <= done:
            continue
        lot = selectors.lots_of(accrual.subscriber_id)[accrual.pk]
        unused = min(due - done, lot.remaining)
        charged = min(due - done - unused, lot.spent - lot.charged)
        if unused <= 0 and charged <= 0:
            continue  # the rest expired: nothing is left to take
        entry, created = _write(
            accrual.subscriber_id, EntryKind.CLAWBACK, -unused, f"clawback:{accrual.pk}:{due}", on=clock.today(),
            memo=_("Payment refunded") if payment.refunded_amount > 0 else _("Payment cancelled"),
            payment_id=payment_id, lot=accrual, charged_points=charged,
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
    job): one entry per subscriber and day (``expiry:<subscriber>:<day>``). Returns how many subscribers. Until it
    runs, such points are already refused to a spend."""
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
    spend. More than the points that can be spent today (``selectors.spendable_of``: points past their last day are
    not) is refused (422 ``bonus_insufficient``), so are points worth less than half a kopeck (``bonus_too_small``);
    nothing is written."""
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
    if not _worth_a_kopeck(points):
        raise ValidationError(
            {"points": ValidationError(_("These points are worth less than a kopeck."), code="bonus_too_small")}
        )
    available = selectors.spendable_of(subscriber.pk, clock.today())
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

RULE_FIELDS = [
    f.name for f in BonusRules._meta.fields if f.name not in ("id", "payments_after_tx", "updated_at", "updated_by")
]
PAYMENT_RULES = [name for name in RULE_FIELDS if name.startswith(("on_time_", "referral_"))]


@transaction.atomic
def do_update_rules(*, acting_user, **values) -> BonusRules:
    check_perm(acting_user, Perm.BONUS_MANAGE)
    rules, _created = BonusRules.objects.select_for_update().get_or_create(pk=1)
    before = audit.snapshot(rules, RULE_FIELDS)
    for_payments = [getattr(rules, name) for name in PAYMENT_RULES]
    for name, value in values.items():
        if name not in RULE_FIELDS:
            raise TypeError(f"unknown rule {name}")
        setattr(rules, name, value)
    if for_payments != [getattr(rules, name) for name in PAYMENT_RULES]:
        rules.payments_after_tx = LedgerTransaction.objects.aggregate(m=Max("pk"))["m"] or 0
    rules.updated_at, rules.updated_by = clock.now(), acting_user
    rules.full_clean(exclude=["updated_by"])
    rules.save()
    audit.record(actor=acting_user, action="bonuses.rules_changed", obj=rules, before=before,
                 after=audit.snapshot(rules, RULE_FIELDS))  # fmt: skip
    return rules


def find_referrer(text: str, user) -> Subscriber | None:
    """A referrer by referral code or account number (as staff type what the new subscriber says), among the
    subscribers ``user`` may see: another branch's account number is as unknown as a mistyped one."""
    text = (text or "").strip()
    if not text:
        return None
    return (
        visible_subscribers(user)
        .filter(Q(referral_code__code=text.upper()) | Q(account_number=text) | Q(legacy_account=text))
        .first()
    )


MAX_REFERRAL_CHAIN = 1000


def _refers_back(referrer: Subscriber, subscriber: Subscriber) -> bool:
    """Whether ``subscriber`` is up ``referrer``'s chain of referrers (a circle: each would earn on the other)."""
    current = referrer.pk
    for _step in range(MAX_REFERRAL_CHAIN):
        current = Referral.objects.filter(referred_id=current).values_list("referrer_id", flat=True).first()
        if current is None:
            return False
        if current == subscriber.pk:
            return True
    return True


@transaction.atomic
def do_set_referrer(subscriber, *, referrer_ref: str, acting_user, since: dt.date | None = None) -> Referral:
    """Record who referred ``subscriber`` (console, BONUS_MANAGE); the referral period starts ``since`` (today). The
    referrer is one the staff member can see, not closed, and not referred by ``subscriber`` up the chain."""
    _check(acting_user, Perm.BONUS_MANAGE, subscriber)
    referrer = find_referrer(referrer_ref, acting_user)
    if referrer is None:
        raise ValidationError({"referrer": ValidationError(_("No subscriber has this code or account number."),
                                                           code="referrer_unknown")})  # fmt: skip
    if referrer.pk == subscriber.pk:
        raise ValidationError({"referrer": ValidationError(_("A subscriber cannot refer themselves."),
                                                           code="referrer_self")})  # fmt: skip
    if referrer.is_closed:
        raise ValidationError({"referrer": ValidationError(_("This subscriber's account is closed."),
                                                           code="referrer_closed")})  # fmt: skip
    if _refers_back(referrer, subscriber):
        circular = _("This referrer came on the subscriber's own recommendation, directly or through others.")
        raise ValidationError({"referrer": ValidationError(circular, code="referrer_circular")})
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
