"""The access state of each subscriber, the rules that move it, exemptions from blocking, and the log of changes."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan
from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber, SubscriberGroup


class AccessStateKind(models.TextChoices):
    ACTIVE = "active", _("Active")
    WARNED = "warned", _("Warned")
    RESTRICTED = "restricted", _("Restricted")
    SUSPENDED = "suspended", _("Suspended")
    FROZEN = "frozen", _("Frozen")
    BLOCKED = "blocked", _("Blocked by operator")
    TERMINATED = "terminated", _("Terminated")


# The states a sweep computes from money and subscriptions; BLOCKED and TERMINATED are set and lifted by staff.
COMPUTED_STATES = frozenset(
    {
        AccessStateKind.ACTIVE,
        AccessStateKind.WARNED,
        AccessStateKind.RESTRICTED,
        AccessStateKind.SUSPENDED,
        AccessStateKind.FROZEN,
    }
)
STAFF_STATES = frozenset({AccessStateKind.BLOCKED, AccessStateKind.TERMINATED})
# What RADIUS does: the payment-page redirect, or no access at all.
REDIRECTED_STATES = frozenset({AccessStateKind.RESTRICTED})
DENIED_STATES = frozenset({AccessStateKind.SUSPENDED, AccessStateKind.BLOCKED, AccessStateKind.TERMINATED})


class TransitionCause(models.TextChoices):
    SWEEP = "sweep", _("Periodic check")
    BALANCE = "balance", _("Balance changed")
    SUBSCRIPTION = "subscription", _("Subscription changed")
    EXEMPTION = "exemption", _("Exemption changed")
    STAFF = "staff", _("Staff")
    GROUPS = "groups", _("Groups changed")
    CLOSED = "closed", _("Account closed")


class AccessState(models.Model):
    """Where a subscriber stands now. A subscriber without a row is ``active`` (a new one, before the first
    evaluation); ``since`` is when this state began, ``restricted_since`` when the current debt episode did (it
    carries over restricted → suspended, and through a freeze, a block or a termination while the debt lasts; it
    counts the D days)."""

    subscriber = models.OneToOneField(
        Subscriber, on_delete=models.CASCADE, primary_key=True, related_name="access_state"
    )
    state = models.CharField(
        _("access state"), max_length=12, choices=AccessStateKind.choices, default=AccessStateKind.ACTIVE
    )
    since = models.DateTimeField(_("since"))
    restricted_since = models.DateTimeField(_("restricted since"), null=True, blank=True)
    # The day the money runs out at today's fees (None: no recurring fees, or frozen); days_left counts to it.
    runout_on = models.DateField(_("money runs out on"), null=True, blank=True)
    # What must be paid to leave restricted / suspended: -(balance + credit limit) when that is positive.
    owed = MoneyField(_("owed"), default=0)
    # The run-out reminders sent for ``reminded_for`` (a run-out date): the smallest "N days left" sent. A payment
    # that moves the run-out date starts the reminders afresh.
    reminded_for = models.DateField(null=True, blank=True)
    reminded_days = models.PositiveSmallIntegerField(null=True, blank=True)
    exempt = models.BooleanField(_("exempt from blocking"), default=False)
    # For BLOCKED and TERMINATED: the operator's words.
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    evaluated_at = models.DateTimeField(_("evaluated at"))

    class Meta:
        verbose_name = _("access state")
        verbose_name_plural = _("access states")
        indexes = [
            # The dunning queue and RADIUS's sets read the few subscribers not active.
            models.Index(fields=["state", "since"], condition=~Q(state="active"), name="dunning_state_not_active"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in AccessStateKind]), name="dunning_state_known"
            ),
            models.CheckConstraint(condition=Q(owed__gte=0), name="dunning_owed_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.state}"


class DunningRule(models.Model):
    """Thresholds for a subscriber group, a plan, or everyone (neither set: the default rule, at most one).
    A subscriber takes the rule of its groups first (several: the largest ``warn_days`` and the largest
    ``suspend_after_days``, "never" the largest of all: warned earliest and suspended latest, docs/dunning.md), then
    the rule of its plan, then the default, then the settings (``ABONENT_DUNNING_WARN_DAYS`` /
    ``..._SUSPEND_DAYS``)."""

    name = models.CharField(_("name"), max_length=100)
    # True on the default rule (no group, no plan); a partial unique index keeps it to one.
    is_default = models.BooleanField(default=False, editable=False)
    group = models.OneToOneField(
        SubscriberGroup,
        verbose_name=_("subscriber group"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    plan = models.OneToOneField(
        Plan, verbose_name=_("plan"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    warn_days = models.PositiveSmallIntegerField(_("warn when money lasts fewer than, days"), default=3)
    # None: never suspended automatically (restricted until paid or blocked by staff).
    suspend_after_days = models.PositiveSmallIntegerField(
        _("suspend after restricted for, days"), null=True, blank=True, default=14
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("dunning rule")
        verbose_name_plural = _("dunning rules")
        constraints = [
            models.CheckConstraint(
                condition=~Q(group__isnull=False, plan__isnull=False), name="dunning_rule_one_scope"
            ),
            models.CheckConstraint(
                condition=Q(is_default=True, group__isnull=True, plan__isnull=True)
                | Q(is_default=False) & (Q(group__isnull=False) | Q(plan__isnull=False)),
                name="dunning_rule_default_scope",
            ),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="dunning_rule_one_default"
            ),
            models.CheckConstraint(condition=Q(warn_days__lte=365), name="dunning_rule_warn_days_range"),
            models.CheckConstraint(
                condition=Q(suspend_after_days__isnull=True) | Q(suspend_after_days__lte=3650),
                name="dunning_rule_suspend_days_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Exemption(models.Model):
    """ "Never block" for a subscriber or a whole group (hospitals, schools, staff) from ``starts_on`` to
    ``expires_on`` inclusive: money rules stop at ``warned``. Revoked, never deleted."""

    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_exemptions",
    )
    group = models.ForeignKey(
        SubscriberGroup,
        verbose_name=_("subscriber group"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    reason = models.CharField(_("reason"), max_length=500)
    starts_on = models.DateField(_("from"))
    expires_on = models.DateField(_("until"))
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("exemption")
        verbose_name_plural = _("exemptions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(subscriber__isnull=False, group__isnull=True)
                | Q(subscriber__isnull=True, group__isnull=False),
                name="dunning_exemption_one_scope",
            ),
            models.CheckConstraint(condition=Q(expires_on__gte=models.F("starts_on")), name="dunning_exemption_dates"),
            models.CheckConstraint(condition=~Q(reason=""), name="dunning_exemption_reason"),
        ]

    def __str__(self) -> str:
        return self.reason


class AccessTransition(models.Model):
    """One change of a subscriber's access state: the audit trail of dunning (append-only)."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="access_transitions")
    from_state = models.CharField(max_length=12, choices=AccessStateKind.choices)
    to_state = models.CharField(max_length=12, choices=AccessStateKind.choices)
    at = models.DateTimeField()
    cause = models.CharField(max_length=12, choices=TransitionCause.choices)
    # balance + credit limit at the change, for "why was I blocked".
    available = MoneyField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("access state change")
        verbose_name_plural = _("access state changes")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["subscriber", "-at"], name="dunning_transition_sub_at")]

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.from_state} → {self.to_state}"
