"""The ledger (accounts, transactions, postings), subscriptions and what is charged for them.

Sign convention: a posting's amount is from the account's point of view — positive increases what the
account holds. A subscriber's balance is the sum of its postings (a payment is +, a fee is −); every
transaction's postings sum to zero, so the money a subscriber gains some other account gives up.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import FreezePolicy, Plan, PlanPrice, PromisedPaymentPolicy, Service, Turbo
from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber


class AccountKind(models.TextChoices):
    SUBSCRIBER = "subscriber", _("Subscriber's personal account")
    REVENUE = "revenue", _("Revenue")
    CASH = "cash", _("Cash and payment channels")
    CLEARING = "clearing", _("Gateway clearing")
    BONUS = "bonus", _("Bonus liability")
    PROMISED = "promised", _("Promised-payment credit")
    ADJUSTMENT = "adjustment", _("Manual adjustments")
    SUSPENSE = "suspense", _("Suspense")
    # Prepaid cards sold and not yet activated: money the ISP holds and still owes as service.
    VOUCHER = "voucher", _("Prepaid cards liability")


class LedgerAccount(models.Model):
    """One account of the ledger: a subscriber's personal account, or a system account.

    Only subscriber accounts keep a cached ``balance``, maintained by the database from the postings
    (see migration 0002): one hot row per system account would serialise every writer. An account that has
    postings cannot be deleted (a database trigger, migration 0004: postings carry no per-row foreign key).
    """

    kind = models.CharField(_("kind"), max_length=20, choices=AccountKind.choices)
    # Unique by a constraint rather than ``unique=True``: no ``varchar_pattern_ops`` twin (never searched by LIKE).
    code = models.CharField(_("code"), max_length=100)
    name = models.CharField(_("name"), max_length=200)
    subscriber = models.OneToOneField(
        Subscriber, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_account"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    balance = MoneyField(_("balance"), default=0, editable=False)
    credit_limit = MoneyField(_("credit limit"), default=0)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        indexes = [
            # Only revenue accounts name a service: a partial index keeps subscriber accounts out of it.
            models.Index(fields=["service"], condition=Q(service__isnull=False), name="billing_account_service_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="billing_account_code_uniq"),
            models.CheckConstraint(
                condition=Q(kind="subscriber", subscriber__isnull=False)
                | (~Q(kind="subscriber") & Q(subscriber__isnull=True)),
                name="billing_account_subscriber_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind="subscriber") | Q(balance=0), name="billing_account_no_system_balance"
            ),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="billing_account_credit_limit_gte_0"),
        ]

    def __str__(self) -> str:
        return self.name


class TransactionKind(models.TextChoices):
    FEE = "fee", _("Recurring fee")
    ACTIVATION = "activation", _("Activation fee")
    PLAN_CHANGE = "plan_change", _("Plan change")
    FREEZE = "freeze", _("Freeze")
    ONE_OFF = "one_off", _("One-off service")
    ADJUSTMENT = "adjustment", _("Manual adjustment")
    PAYMENT = "payment", _("Payment")
    REFUND = "refund", _("Refund")
    PROMISED_TAKE = "promised_take", _("Promised payment taken")
    PROMISED_CLOSE = "promised_close", _("Promised payment closed")
    TURBO = "turbo", _("Turbo")
    REVERSAL = "reversal", _("Reversal")
    # Usage and time rating (billing/rating): traffic over the included volume, time online, time packages.
    USAGE = "usage", _("Traffic over the included volume")
    TIME = "time", _("Time online")
    TIME_PACKAGE = "time_package", _("Time package")
    # Prepaid cards (the vouchers app): a dealer's series sold, a card activated as a top-up.
    VOUCHER_SALE = "voucher_sale", _("Prepaid cards sold")
    VOUCHER_ACTIVATION = "voucher_activation", _("Prepaid card activated")
    # Bonus points (the bonuses app): earned, spent on fees, expired.
    BONUS_ACCRUAL = "bonus_accrual", _("Bonus points earned")
    BONUS_SPEND = "bonus_spend", _("Bonus points spent")
    BONUS_EXPIRY = "bonus_expiry", _("Bonus points expired")
    # The balance a subscriber brought from the old billing (the imports app): one per subscriber and source, keyed
    # ``opening:<source>:<old id>``, against the opening-balances system account.
    OPENING_BALANCE = "opening_balance", _("Opening balance")


class LedgerTransaction(models.Model):
    """One business event in the ledger; immutable. Corrections are new transactions that reverse it.

    ``idempotency_key`` comes from the natural key of what is recorded (``payment:<channel>:<external id>``),
    with ``request_hash`` of the content: the same key with other content is an error, not a silent no-op.
    The billing run's fees are the exception: one transaction carries a batch of charges (``fees:<date>:<id>``,
    keyed by its own id), and each fee's exactly-once key is its ``Charge`` row's unique period (ADR 0010).
    """

    idempotency_key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    kind = models.CharField(_("kind"), max_length=20, choices=TransactionKind.choices)
    effective_date = models.DateField(_("date"))
    created_at = models.DateTimeField(_("recorded"))
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    # The subscriber the transaction concerns, for the card's ledger without joining postings.
    subscriber_id = models.BigIntegerField(null=True, blank=True)
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    memo = models.CharField(_("memo"), max_length=500, blank=True)
    # How many postings the transaction has, declared when it is written. SQLite has no statement triggers:
    # its row triggers seal the transaction once this many legs exist and check the zero sum at the last one
    # (migration 0006). PostgreSQL checks both per statement and leaves it empty on the billing run's batches.
    legs = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")
        indexes = [
            models.Index(fields=["subscriber_id", "effective_date"], name="billing_tx_subscriber_idx"),
            models.Index(
                fields=["acting_user"], condition=Q(acting_user__isnull=False), name="billing_tx_acting_user_idx"
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="billing_tx_key_uniq")]

    def __str__(self) -> str:
        return self.idempotency_key


class Posting(models.Model):
    """One leg of a transaction: ``amount`` added to ``account`` (never zero, never edited or deleted).

    No per-row foreign keys (``db_constraint=False``): the table is append-only, so the references only need
    checking when rows are inserted, and the posting statement trigger does that once per statement, in the
    pass that already checks the zero sums; accounts with postings cannot be deleted (ADR 0010).
    """

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="postings", db_constraint=False
    )
    # Looked up through ``billing_posting_account_idx`` (account, transaction): no index of its own.
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="postings", db_constraint=False, db_index=False
    )
    amount = MoneyField(_("amount"))

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        indexes = [models.Index(fields=["account", "transaction"], name="billing_posting_account_idx")]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="billing_posting_amount_not_zero")]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.amount}"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    FROZEN = "frozen", _("Frozen")
    TERMINATED = "terminated", _("Terminated")


class Subscription(models.Model):
    """A subscriber's plan over time. ``next_charge_on`` is the charging cursor: the start of the first
    period not yet charged, advanced in the same transaction as the charge (crash-safe).

    ``charge_cycle`` counts the times the cursor was wound back over days already charged and credited (an
    unfreeze): a fee's exactly-once key is ``(subscription, period_start, cycle)``, so a period credited back
    and then served again is owed again, while a retried or concurrent run in the same cycle still conflicts.
    ``service`` repeats the plan's service so the schema can allow one live subscription per service.
    """

    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="subscriptions")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="+", db_index=False)
    status = models.CharField(
        _("status"), max_length=20, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    started_on = models.DateField(_("started"))
    ended_on = models.DateField(_("ended"), null=True, blank=True)
    # Day of month the anniversary periods start on (the activation day; 29–31 clamp to short months).
    anchor_day = models.PositiveSmallIntegerField()
    next_charge_on = models.DateField()
    charge_cycle = models.PositiveIntegerField(default=0, db_default=0)
    # A downgrade waits for the next period.
    pending_plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    pending_plan_from = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-started_on", "-id"]
        # No index holds ``next_charge_on``: the billing run moves every cursor, and an update that changes no
        # indexed column, with room on its page (fillfactor 50, migration 0004), is a HOT update: no index
        # entries at all. The run finds what is due with one scan.
        indexes = [
            models.Index(
                fields=["pending_plan"], condition=Q(pending_plan__isnull=False), name="billing_sub_pending_plan_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(anchor_day__gte=1, anchor_day__lte=31), name="billing_sub_anchor_day"),
            models.CheckConstraint(
                condition=Q(pending_plan__isnull=True, pending_plan_from__isnull=True)
                | Q(pending_plan__isnull=False, pending_plan_from__isnull=False),
                name="billing_sub_pending_pair",
            ),
            # Four activations at once must make one subscription (the rest are refused), not four.
            models.UniqueConstraint(
                fields=["subscriber", "service"],
                condition=~Q(status="terminated"),
                name="billing_sub_one_live_per_service",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.plan}"


class SubscriptionEventKind(models.TextChoices):
    ACTIVATED = "activated", _("Activated")
    PLAN_CHANGED = "plan_changed", _("Plan changed")
    DOWNGRADE_SCHEDULED = "downgrade_scheduled", _("Plan change scheduled")
    FROZEN = "frozen", _("Frozen")
    UNFROZEN = "unfrozen", _("Unfrozen")
    TERMINATED = "terminated", _("Terminated")
    TURBO = "turbo", _("Turbo turned on")
    TIME_PACKAGE = "time_package", _("Time package bought")


class SubscriptionEvent(models.Model):
    """One state change of a subscription, in order: the subscription's history."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("event"), max_length=30, choices=SubscriptionEventKind.choices)
    effective_at = models.DateTimeField(_("effective"))
    from_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("subscription event")
        verbose_name_plural = _("subscription events")
        ordering = ["-effective_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.kind}"


class ChargeKind(models.TextChoices):
    FEE = "fee", _("Recurring fee")
    ACTIVATION = "activation", _("Activation fee")
    PRORATION_CREDIT = "proration_credit", _("Credit for the unused period")
    PRORATION_CHARGE = "proration_charge", _("Charge for the rest of the period")
    FREEZE_FEE = "freeze_fee", _("Freeze fee")
    TURBO = "turbo", _("Turbo")
    # Days of a fee (or of a plan change's charge) given back. A charge for a thing given back keeps its kind with a
    # negative amount and ``reverses`` set (an activation fee waived, a freeze ended early).
    REVERSAL = "reversal", _("Fee given back")
    # Rated usage (billing/rating): traffic over the included volume for a period, the same for usage that
    # arrived after the period was rated, and time online (per-minute and hourly plans) and time packages.
    USAGE = "usage", _("Traffic over the included volume")
    USAGE_ADJUSTMENT = "usage_adjustment", _("Late traffic for a rated period")
    TIME = "time", _("Time online")
    TIME_PACKAGE = "time_package", _("Time package")
    # A promotion's or a bundle's discount on a fee: a line of its own, negative, beside the fee it reduces.
    DISCOUNT = "discount", _("Discount")


class Charge(models.Model):
    """What one subscription was charged (or credited) for ``[period_start, period_end)`` and why.

    Fees are unique by ``(subscription, period_start, cycle)``: the schema, not a check in code, is what makes
    a billing run charge a period once however often it is retried; the cycle (the subscription's
    ``charge_cycle`` when charged) lets a period credited back by a freeze be charged again after the unfreeze.
    Charges caused by an event (a plan change, a freeze) are unique per event instead, and a reversal of a
    charge (``reverses``) names the charge and the days it gives back. The billing run posts a batch of fees as
    one ledger transaction (one posting per subscriber account, one per revenue account), so several
    charges can share a ``transaction``; the charge is where each fee's detail lives (ADR 0010).

    Like postings, charges are only inserted (UPDATE and DELETE are refused by the database, migration 0006),
    and their references are checked by a statement trigger (migration 0004) instead of per-row foreign keys;
    subscriptions and prices they name cannot be deleted. ``abonent ledger verify`` proves that each
    transaction's subscriber postings equal the sum of its charges.
    """

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="charges", db_constraint=False
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ChargeKind.choices)
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("until"))
    amount = MoneyField(_("amount"))  # positive = charged to the subscriber, negative = credited back
    price = models.ForeignKey(
        PlanPrice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # What was rated, for usage and time charges: bytes charged (traffic) or seconds (time).
    quantity = models.BigIntegerField(_("quantity"), null=True, blank=True)
    proration_numerator = models.BigIntegerField(null=True, blank=True)
    proration_denominator = models.BigIntegerField(null=True, blank=True)
    # The whole period's amount a charge is a part of when it is not its price's list fee (billing/pricing): the
    # individual, group or bundle monthly fee of a fee, the whole period's discount of a discount line. Later
    # credits measure the days they give back on it, so they give back exactly what was charged.
    base_fee = MoneyField(null=True, blank=True)
    cycle = models.PositiveIntegerField(default=0, db_default=0)
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        db_constraint=False,
        db_index=False,
    )
    event = models.ForeignKey(
        SubscriptionEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="charges", db_index=False
    )
    # Found from the charge (the card's ledger), never the other way round on a hot path: no index.
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="charges", db_constraint=False, db_index=False
    )

    class Meta:
        verbose_name = _("charge")
        verbose_name_plural = _("charges")
        # ``billing_charge_event_once`` (partial, on event) serves lookups by event: no index of its own.
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start", "cycle"],
                condition=Q(kind="fee"),
                name="billing_charge_fee_once",
            ),
            # The same days of a charge are given back once (a retried reversal conflicts).
            # A fee's discount line (billing/pricing), written with the fee by the run: once, like the fee.
            models.UniqueConstraint(
                fields=["subscription", "period_start", "cycle"],
                condition=Q(kind="discount", event__isnull=True, reverses__isnull=True),
                name="billing_charge_discount_once",
            ),
            models.UniqueConstraint(
                fields=["reverses", "period_start"],
                condition=Q(reverses__isnull=False),
                name="billing_charge_reversal_once",
            ),
            models.UniqueConstraint(
                fields=["event", "kind"], condition=Q(event__isnull=False), name="billing_charge_event_once"
            ),
            # Traffic over the included volume (billing/rating): the period's first charge is cycle 0 and each
            # late-usage adjustment the next number (``UsageRating.revision``). A retried or concurrent rating
            # computes the same number and conflicts, so each new amount is charged once.
            models.UniqueConstraint(
                fields=["subscription", "period_start", "cycle"],
                condition=Q(kind__in=["usage", "usage_adjustment"]),
                name="billing_charge_usage_once",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=models.F("period_start")), name="billing_charge_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.period_start}: {self.amount}"


class FreezeStatus(models.TextChoices):
    ACTIVE = "active", _("In effect")
    FINISHED = "finished", _("Finished")


class Freeze(models.Model):
    """A voluntary pause ``[starts_on, ends_on)``: service blocked, recurring fees stopped. Its fee is the charge of
    its ``event``; ended early, the days not used are given back by a reversal of that charge."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="freezes")
    policy = models.ForeignKey(FreezePolicy, on_delete=models.PROTECT, related_name="+")
    event = models.OneToOneField(
        SubscriptionEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"))
    status = models.CharField(_("status"), max_length=10, choices=FreezeStatus.choices, default=FreezeStatus.ACTIVE)
    ended_early_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("freeze")
        verbose_name_plural = _("freezes")
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gt=models.F("starts_on")), name="billing_freeze_order"),
            models.UniqueConstraint(
                fields=["subscription"], condition=Q(status="active"), name="billing_freeze_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.starts_on}–{self.ends_on}"


class TurboStatus(models.TextChoices):
    ACTIVE = "active", _("On")
    FINISHED = "finished", _("Finished")
    ENDED_EARLY = "ended_early", _("Ended early")


class TurboActivation(models.Model):
    """A turbo bought for a subscription: the option's speed from ``starts_at`` until ``ends_at``.

    The speed, hours and price are copied from the option when bought. Paid by the charge of its event
    (``billing_charge_event_once``: one charge however often the purchase is retried); one turbo at a time
    per subscription, by the schema. The worker finishes it when ``ends_at`` passes and the NAS gets the plan's
    speed back by CoA.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="turbos")
    turbo = models.ForeignKey(Turbo, verbose_name=_("turbo option"), on_delete=models.PROTECT, related_name="+")
    event = models.OneToOneField(SubscriptionEvent, on_delete=models.PROTECT, related_name="+")
    download_kbps = models.PositiveIntegerField(_("download, kbit/s"))
    upload_kbps = models.PositiveIntegerField(_("upload, kbit/s"))
    price = MoneyField(_("price"))
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    status = models.CharField(_("status"), max_length=12, choices=TurboStatus.choices, default=TurboStatus.ACTIVE)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("turbo")
        verbose_name_plural = _("turbos")
        ordering = ["-starts_at", "-id"]
        indexes = [
            # The worker's "what has run out" and the RADIUS policy's "who has one now": the active few.
            models.Index(fields=["ends_at"], condition=Q(status="active"), name="billing_turbo_active_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="billing_turbo_order"),
            models.CheckConstraint(condition=Q(price__gte=0), name="billing_turbo_price_not_negative"),
            models.UniqueConstraint(
                fields=["subscription"], condition=Q(status="active"), name="billing_turbo_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.turbo_id} until {self.ends_at}"


class PromisedPaymentStatus(models.TextChoices):
    OPEN = "open", _("Open")
    REPAID = "repaid", _("Repaid")
    EXPIRED = "expired", _("Expired")


class PromisedPayment(models.Model):
    """Temporary credit taken by a subscriber; closed by the next payment or when it expires."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="promised_payments")
    policy = models.ForeignKey(PromisedPaymentPolicy, on_delete=models.PROTECT, related_name="+")
    amount = MoneyField(_("amount"))
    fee = MoneyField(_("fee"), default=0)
    taken_at = models.DateTimeField(_("taken"))
    due_on = models.DateField(_("due"))
    status = models.CharField(
        _("status"), max_length=10, choices=PromisedPaymentStatus.choices, default=PromisedPaymentStatus.OPEN
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    take_transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="+")
    close_transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The payment that repaid it: cancelling that payment opens the promise again (do_reopen_promised_payment).
    repaid_by = models.ForeignKey(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # How often it was opened again: each closing is a transaction of its own key.
    reopened = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = _("promised payment")
        verbose_name_plural = _("promised payments")
        ordering = ["-taken_at"]
        indexes = [
            models.Index(fields=["repaid_by"], condition=Q(repaid_by__isnull=False), name="billing_promised_repaid_idx")
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_promised_amount_positive"),
            # One open promised payment per subscriber: a second would stack credit on credit.
            models.UniqueConstraint(
                fields=["subscriber"], condition=Q(status="open"), name="billing_promised_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.amount} until {self.due_on}"


class OnlineDay(models.Model):
    """A day on which a subscriber had a session; written by accounting (the RADIUS issue) and read by
    daily plans that charge only if the subscriber was online the day before."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    class Meta:
        verbose_name = _("day online")
        verbose_name_plural = _("days online")
        constraints = [models.UniqueConstraint(fields=["subscriber", "day"], name="billing_onlineday_uniq")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.day}"


class UnbilledDay(models.Model):
    """A day of an online-only daily plan that the billing run did not charge, because no online day had been
    recorded for the day before when it ran.

    Accounting can record that day later (an interim after the run, a spool replayed after a database outage):
    every run looks at the unbilled days of the last ``UNBILLED_LOOKBACK_DAYS`` again and charges those that
    turn out to follow a day online, deleting the row in the same transaction as the charge.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    price = models.ForeignKey(PlanPrice, on_delete=models.CASCADE, related_name="+", db_index=False)
    cycle = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("unbilled day")
        verbose_name_plural = _("unbilled days")
        indexes = [models.Index(fields=["day"], name="billing_unbilled_day_idx")]
        constraints = [models.UniqueConstraint(fields=["subscription", "day"], name="billing_unbilled_once")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.day}"


# Registered with the billing app, kept in the modules of their features: prices that differ from the list price
# (billing/pricing), and what rating has rated (billing/rating: traffic per period, time online, time packages).
from .pricing.models import Bundle, BundleItem, PriceOverride, Promotion  # noqa: E402, F401
from .rating.models import TimePackagePurchase, TimeRating, UsageRating  # noqa: E402, F401

# What the billing run and the ledger's verification leave behind (billing/runs): run records, parked subscriptions.
from .runs.models import BillingRunRecord, LedgerVerification, ParkedSubscription  # noqa: E402, F401
