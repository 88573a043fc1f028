"""Writes of the prepaid cards: a series generated, a dealer's sale, cards voided or expired, a card activated.

Each ``do_*`` is atomic, checks access first (``acting_user=None``: the system, or the subscriber in the portal),
validates everything before writing, writes the ledger and its record together, and audits. The ledger:

- sale: Dr ``cash:dealer:<id>`` (face value less commission), Dr commission / Cr cards liability (face value);
- activation: Dr liability / Cr the subscriber's account, key ``voucher:<id>``: once per card, whatever retries or
  races (the card's row is locked, and the key is unique);
- a sold card voided: Dr liability (face value) / Cr the dealer's account (what it paid: face value less its
  commission) and the commission account (the commission taken back), key ``voucher_void:<id>``;
- a sold card expired: Dr liability / Cr breakage revenue, key ``voucher_expiry:<id>``.

Signs are the ledger's (billing/models.py): a credit is +, a debit − (a payment is + on the subscriber's account
and − on the channel's cash account). Unsold cards are no liability (nobody paid for them): voiding or expiring
them writes no ledger entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.billing import ledger
from abonent.billing.actions.common import _check, _check_balance_after, _positive_amount
from abonent.billing.models import TransactionKind
from abonent.catalog.models import ChargeMode, PlanPrice
from abonent.core import audit, clock, events, secrets
from abonent.core.deadlines import db_deadline
from abonent.core.money import AMOUNT_LIMIT, KOPECK, format_money, quantize
from abonent.staff.permissions import Perm, check_branch, check_perm

from . import accounts, codes
from .models import (
    MAX_SERIES_COUNT,
    Dealer,
    SeriesKind,
    Voucher,
    VoucherSale,
    VoucherSeries,
    VoucherStatus,
)

# Seconds an activation waits for a locked row (the card, the subscriber's account) and for one statement: past
# them it is refused (``core.deadlines``), nothing written, instead of hanging behind a billing run.
LOCK_S = 3
STATEMENT_S = 15


def _refuse(message: str, code: str, field: str = "code"):
    return ValidationError({field: ValidationError(message, code=code)})


def _too_large(field: str) -> ValidationError:
    return _refuse(
        _("The cards' total must not exceed %(limit)s.") % {"limit": format_money(AMOUNT_LIMIT)},
        "amount_too_large",
        field,
    )


def check_series_branch(user, series: VoucherSeries) -> None:
    """A series of a branch (a Wi-Fi series opens its accounts there) is that branch's: a user limited to other
    branches may not see, print, sell or void it. A series of no branch is the company's, open to all."""
    if series.branch_id is not None:
        check_branch(user, series.branch_id)


# --- dealers and series ------------------------------------------------------------------------------------------


@transaction.atomic
def do_create_dealer(*, name: str, contacts: str = "", commission_percent=None, acting_user) -> Dealer:
    check_perm(acting_user, Perm.VOUCHER_MANAGE)
    name = (name or "").strip()
    if not name:
        raise _refuse(_("Give the dealer's name."), "required", "name")
    if commission_percent not in (None, ""):
        try:
            commission_percent = Decimal(str(commission_percent))
        except ArithmeticError:
            commission_percent = Decimal("-1")
        if not commission_percent.is_finite() or not Decimal("0") <= commission_percent < Decimal("100"):
            raise _refuse(
                _("The commission is a percentage from 0 to 99.99."), "commission_invalid", "commission_percent"
            )
    else:
        commission_percent = None
    dealer = Dealer.objects.create(
        name=name[:200],
        contacts=(contacts or "").strip()[:500],
        commission_percent=commission_percent,
        created_at=clock.now(),
    )
    audit.record(actor=acting_user, action="vouchers.dealer_created", obj=dealer, after=audit.snapshot(dealer))
    return dealer


def serial_of(series: VoucherSeries, number: int) -> str:
    """The printed serial number: the series' id and the card's number in it, ten digits."""
    return f"{series.pk:05d}{number:05d}"


@transaction.atomic
def do_create_series(
    *,
    name: str,
    kind: str,
    amount,
    count: int,
    expires_on: dt.date,
    acting_user,
    plan=None,
    dealer: Dealer | None = None,
    branch=None,
) -> VoucherSeries:
    """Generate a series of ``count`` new cards, each with its own code (``codes.generate``)."""
    check_perm(acting_user, Perm.VOUCHER_MANAGE)
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ValidationError(_("Give the series a name."), code="required")
    if kind not in SeriesKind.values:
        errors["kind"] = ValidationError(_("Unknown card kind."), code="kind_invalid")
    try:
        amount = _positive_amount(amount)
    except ValidationError as exc:
        errors.update(exc.error_dict)
    if not isinstance(count, int) or not 1 <= count <= MAX_SERIES_COUNT:
        errors["count"] = ValidationError(
            _("A series has from 1 to %(limit)s cards.") % {"limit": MAX_SERIES_COUNT}, code="count_out_of_range"
        )
    if expires_on is None or expires_on <= clock.today():
        errors["expires_on"] = ValidationError(_("The last day must be in the future."), code="expires_on_past")
    if "amount" not in errors and "count" not in errors and amount * count > AMOUNT_LIMIT:
        # Every sale of the series then fits a ledger posting (``do_sell_vouchers`` checks it again).
        errors.update(_too_large("amount").error_dict)
    if kind == SeriesKind.WIFI:
        if plan is None or plan.charge_mode != ChargeMode.TIME:
            errors["plan"] = ValidationError(
                _("A Wi-Fi series needs a pay-as-you-go plan charged by time online."), code="plan_invalid"
            )
        elif plan.is_archived:
            errors["plan"] = ValidationError(
                _("This plan is archived: choose a plan open to new subscribers."), code="plan_archived"
            )
        elif not PlanPrice.objects.filter(plan=plan, valid_from__lte=clock.today()).exists():
            errors["plan"] = ValidationError(
                _("This plan has no price yet: set its price first."), code="plan_without_price"
            )
    else:
        plan = None
    if errors:
        raise ValidationError(errors)
    if branch is not None:
        check_branch(acting_user, branch.pk)
    series = VoucherSeries.objects.create(
        name=name[:200],
        kind=kind,
        amount=amount,
        plan=plan,
        branch=branch,
        count=count,
        expires_on=expires_on,
        dealer=dealer,
        created_by=acting_user,
        created_at=clock.now(),
    )
    fresh: set[str] = set()
    cards = []
    for number in range(1, count + 1):
        code = codes.generate()
        while code in fresh:  # 2^-75 a pair: never, but a duplicate would fail the whole series
            code = codes.generate()
        fresh.add(code)
        cards.append(
            Voucher(
                series=series,
                serial=serial_of(series, number),
                code_digest=codes.digest(code),
                code_encrypted=secrets.encrypt(code),
            )
        )
    Voucher.objects.bulk_create(cards, batch_size=1000)
    audit.record(
        actor=acting_user,
        action="vouchers.series_created",
        obj=series,
        after={"name": series.name, "kind": kind, "amount": amount, "count": count, "expires_on": expires_on},
    )
    return series


def _range(series: VoucherSeries, first: int, last: int):
    if not 1 <= first <= last <= series.count:
        raise _refuse(
            _("Card numbers in this series run from 1 to %(count)s.") % {"count": series.count},
            "range_invalid",
            "first",
        )
    return Voucher.objects.filter(
        series=series, serial__gte=serial_of(series, first), serial__lte=serial_of(series, last)
    ).order_by("serial")


@transaction.atomic
def do_sell_vouchers(series: VoucherSeries, *, dealer: Dealer, first: int, last: int, key: str, acting_user):
    """A dealer takes (and pays for) cards ``first``..``last`` of a series: they become sold, a liability.

    ``key`` (the form's one-time token) makes a resubmitted form return the first sale. Every card of the range must
    be new: a range overlapping a sale already made is refused whole. The key sent again with another series,
    dealer or range is no resubmission (the form went back and was changed): refused, ``sale_key_reused``."""
    check_perm(acting_user, Perm.VOUCHER_MANAGE)
    check_series_branch(acting_user, series)
    cards = list(_range(series, first, last).select_for_update(of=("self",)))
    # Read after the cards' locks: a double-submitted form's second request waits for the first and returns its
    # sale (the key's unique constraint is the backstop).
    previous = VoucherSale.objects.filter(key=key).first()
    if previous is not None:
        if (previous.series_id, previous.dealer_id, previous.first_serial, previous.last_serial) != (
            series.pk,
            dealer.pk,
            cards[0].serial,
            cards[-1].serial,
        ):
            raise _refuse(
                _("This form was already sent for another sale. Reload the page and enter the sale again."),
                "sale_key_reused",
                "__all__",
            )
        return previous
    if any(card.status != VoucherStatus.NEW for card in cards):
        raise _refuse(_("Some cards of this range are not new: sold, void or expired."), "range_not_new", "first")
    if series.expires_on < clock.today():
        raise _refuse(_("The series has expired."), "series_expired", "first")
    face = quantize(series.amount * len(cards))
    if face > AMOUNT_LIMIT:
        raise _too_large("last")
    commission = quantize(face * (dealer.commission_percent or 0) / 100)
    legs = [(accounts.dealer_cash_account(dealer).pk, commission - face), (accounts.liability_account().pk, face)]
    if commission:
        legs.append((accounts.commission_account().pk, -commission))
    tx, _created = ledger.post(
        key=f"voucher_sale:{key}",
        kind=TransactionKind.VOUCHER_SALE,
        effective_date=clock.today(),
        legs=legs,
        acting_user=acting_user,
        memo=f"{series.name}: {cards[0].serial}–{cards[-1].serial} → {dealer.name}",
    )
    sale = VoucherSale.objects.create(
        key=key,
        series=series,
        dealer=dealer,
        first_serial=cards[0].serial,
        last_serial=cards[-1].serial,
        count=len(cards),
        amount=face,
        commission=commission,
        transaction=tx,
        acting_user=acting_user,
        created_at=clock.now(),
    )
    Voucher.objects.filter(pk__in=[c.pk for c in cards]).update(status=VoucherStatus.SOLD, sale=sale)
    audit.record(
        actor=acting_user,
        action="vouchers.sold",
        obj=sale,
        after={"dealer": dealer.name, "first": sale.first_serial, "last": sale.last_serial, "amount": face},
    )
    return sale


def commission_of(card: Voucher, sale: VoucherSale) -> Decimal:
    """The card's share of its sale's commission: the sale's commission split evenly, rounded down to kopecks,
    the remainder on the sale's last card, so that voiding every card of a sale takes back exactly what it gave."""
    if not sale.commission:
        return Decimal("0.00")
    share = (sale.commission / sale.count).quantize(KOPECK, rounding=ROUND_DOWN)
    if card.serial == sale.last_serial:
        return sale.commission - share * (sale.count - 1)
    return share


@transaction.atomic
def do_void_vouchers(series: VoucherSeries, *, first: int, last: int, reason: str, acting_user) -> int:
    """Withdraw cards (lost, stolen, misprinted). New and sold cards become void; for a sold one the dealer gets
    back what it paid (face value less its commission) and the commission is taken back. Activated, void and
    expired cards of the range are left as they are. Returns how many."""
    check_perm(acting_user, Perm.VOUCHER_MANAGE)
    check_series_branch(acting_user, series)
    reason = (reason or "").strip()
    if not reason:
        raise _refuse(_("Give a reason."), "required", "reason")
    cards = list(
        _range(series, first, last)
        .select_for_update(of=("self",))
        .filter(status__in=[VoucherStatus.NEW, VoucherStatus.SOLD])
        .select_related("sale__dealer")
    )
    now = clock.now()
    for card in cards:
        if card.status == VoucherStatus.SOLD:
            commission = commission_of(card, card.sale)
            legs = [
                (accounts.liability_account().pk, -series.amount),
                (accounts.dealer_cash_account(card.sale.dealer).pk, series.amount - commission),
            ]
            if commission:
                legs.append((accounts.commission_account().pk, commission))
            card.transaction, _created = ledger.post(
                key=f"voucher_void:{card.pk}",
                kind=TransactionKind.VOUCHER_SALE,
                effective_date=clock.today(),
                legs=legs,
                acting_user=acting_user,
                memo=_("Card %(serial)s void: %(reason)s") % {"serial": card.serial, "reason": reason},
            )
        card.status = VoucherStatus.VOID
        card.closed_at = now
        card.reason = reason[:500]
        card.save(update_fields=["status", "transaction", "closed_at", "reason"])
    if cards:
        audit.record(
            actor=acting_user,
            action="vouchers.voided",
            obj=series,
            after={"first": cards[0].serial, "last": cards[-1].serial, "count": len(cards)},
            reason=reason,
        )
    return len(cards)


def do_expire_vouchers(today: dt.date | None = None) -> int:
    """Cards of series past their last day (the worker's daily job): new ones just expire; a sold one's liability
    becomes breakage revenue. One transaction per card (a retry continues where it stopped). Returns how many."""
    today = today or clock.today()
    done = 0
    ids = list(
        Voucher.objects.filter(
            series__expires_on__lt=today, status__in=[VoucherStatus.NEW, VoucherStatus.SOLD]
        ).values_list("pk", flat=True)
    )
    for pk in ids:
        with transaction.atomic():
            card = (
                Voucher.objects.select_for_update(of=("self",))
                .select_related("series")
                .filter(pk=pk, status__in=[VoucherStatus.NEW, VoucherStatus.SOLD])
                .first()
            )
            if card is None:
                continue  # activated or voided meanwhile
            if card.status == VoucherStatus.SOLD:
                card.transaction, _created = ledger.post(
                    key=f"voucher_expiry:{card.pk}",
                    kind=TransactionKind.VOUCHER_SALE,
                    effective_date=card.series.expires_on + dt.timedelta(days=1),
                    legs=[
                        (accounts.liability_account().pk, -card.series.amount),
                        (accounts.breakage_account().pk, card.series.amount),
                    ],
                    memo=_("Card %(serial)s expired unused") % {"serial": card.serial},
                )
            card.status = VoucherStatus.EXPIRED
            card.closed_at = clock.now()
            card.save(update_fields=["status", "transaction", "closed_at"])
            done += 1
    return done


# --- activation --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    voucher: Voucher
    amount: Decimal
    created: bool  # False: the same subscriber activated this card before (a retry)


def parse_code(typed: str) -> str:
    """The bare code, or 422 ``code_mistyped``: a typo is refused before any card is looked up."""
    bare = codes.normalise(typed)
    if bare is None:
        raise _refuse(
            _("This is not a card code: check the characters (16, in groups of four) and try again."), "code_mistyped"
        )
    return bare


def _find_locked(bare: str) -> Voucher:
    card = (
        Voucher.objects.select_for_update(of=("self",))
        .select_related("series")
        .filter(code_digest__in=codes.lookup_digests(bare))
        .first()
    )
    if card is None:
        raise _refuse(_("No card has this code."), "code_unknown")
    return card


def _usable(card: Voucher, subscriber_id: int | None) -> bool:
    """Whether ``card`` may be activated now; False when ``subscriber_id`` activated it already (a retry). Refuses
    (422) a card that was not sold, is void or expired, or went to someone else."""
    if card.status == VoucherStatus.ACTIVATED:
        if subscriber_id is not None and card.activated_by_id == subscriber_id:
            return False
        raise _refuse(_("This card has already been used."), "card_used")
    if card.status == VoucherStatus.VOID:
        raise _refuse(_("This card has been withdrawn; ask the seller."), "card_void")
    if card.status == VoucherStatus.EXPIRED or card.series.expires_on < clock.today():
        raise _refuse(_("This card has expired."), "card_expired")
    if card.status == VoucherStatus.NEW:
        raise _refuse(_("This card has not been sold yet; ask the seller."), "card_not_sold")
    return True


def _credit(card: Voucher, subscriber, *, acting_user) -> None:
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    amount = card.series.amount
    _check_balance_after(account, amount, "code")
    tx, _created = ledger.post(
        key=f"voucher:{card.pk}",
        kind=TransactionKind.VOUCHER_ACTIVATION,
        effective_date=clock.today(),
        legs=[(account.pk, amount), (accounts.liability_account().pk, -amount)],
        subscriber_id=subscriber.pk,
        acting_user=acting_user if getattr(acting_user, "pk", None) else None,
        memo=_("Prepaid card %(serial)s") % {"serial": card.serial},
    )
    card.status = VoucherStatus.ACTIVATED
    card.activated_by = subscriber
    card.activated_at = clock.now()
    card.transaction = tx
    card.save(update_fields=["status", "activated_by", "activated_at", "transaction"])
    audit.record(
        actor=acting_user,
        action="vouchers.activated",
        obj=card,
        subscriber_id=subscriber.pk,
        after={"serial": card.serial, "amount": amount},
    )
    events.emit("billing.balance_changed", subscriber_id=subscriber.pk, credit=True)


@transaction.atomic
def do_activate_voucher(subscriber, *, code: str, acting_user, then=None) -> Activation:
    """Credit a sold top-up card's face value to ``subscriber``. ``code`` is bare (``parse_code``); callers go
    through ``activate`` for the rate limit. The same subscriber activating the card again gets the first
    activation back (``created=False``), so a retried request is harmless. ``then(activation)`` runs inside the
    activation's transaction (the API stores its idempotent answer there)."""
    _check(acting_user, Perm.VOUCHER_VIEW, subscriber)
    db_deadline(lock=LOCK_S, statement=STATEMENT_S, unless_set=True)
    if subscriber.is_closed:
        raise _refuse(_("The account is closed."), "subscriber_closed")
    card = _find_locked(code)
    if card.series.kind != SeriesKind.TOPUP:
        raise _refuse(_("This is a Wi-Fi card: enter it on the Wi-Fi login page."), "card_wifi")
    if _usable(card, subscriber.pk):
        _credit(card, subscriber, acting_user=acting_user)
        result = Activation(card, card.series.amount, created=True)
    else:
        result = Activation(card, card.series.amount, created=False)
    if then is not None:
        then(result)
    return result


def activate(subscriber, *, code: str, acting_user, client_ip: str | None, then=None) -> Activation:
    """The one entry of every activation by a subscriber (portal, API, console): a typo refused uncounted, then
    the attempt counted (``throttle``, may raise ``TooManyAttempts``), then the card looked up. Runs in autocommit:
    the attempt's row must be seen by concurrent attempts, and stay when the activation is refused."""
    from . import throttle

    bare = parse_code(code)
    attempt = throttle.begin(f"sub:{subscriber.pk}", client_ip)
    result = do_activate_voucher(subscriber, code=bare, acting_user=acting_user, then=then)
    throttle.succeeded(attempt)
    return result
