"""The compensation of an incident: a credit of N days' fees to every subscription of the subscribers it affected,
once.

Exactly once, by the schema: the incident's row is locked first, so a second run (a double click, a retry, a
concurrent request) waits for the first and then finds its ``Compensation`` (unique per incident) and returns it;
each credit is a ledger transaction keyed ``compensation:<incident>:<subscription>`` (unique in the ledger), and
each ``CompensationLine`` is unique per (compensation, subscription). The credit is billing's own manual adjustment
(``do_adjust_balance``: audited on the subscriber's card, the balance moved under its row lock, dunning told the
balance grew), against billing's "manual adjustments" account.

Who: ``incident.compensate`` (administrators) and no branch limit: the affected set spans branches, and a credit to
some of them only would be a different decision than the one recorded. A branch-limited user is refused before
anything is read.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from abonent.billing import actions as billing
from abonent.billing.models import Freeze, Subscription, SubscriptionStatus
from abonent.billing.periods import period_for
from abonent.billing.pricing.selectors import price_view
from abonent.catalog.models import ChargeMode
from abonent.core import audit, clock, events
from abonent.core.deadlines import db_deadline
from abonent.core.money import quantize
from abonent.staff.permissions import Perm, allowed_branch_ids, check_perm
from abonent.subscribers.models import SubscriberStatus

from .calculations import days_of_fee
from .models import Compensation, CompensationLine, Incident, IncidentSubscriber

_DAYS = re.compile(r"[+-]?[0-9]+", re.ASCII)
MAX_DAYS = 31  # a month of fees at most: more is a typo (10 for 100), and a goodwill credit beyond it is a decision


def clean_days(value) -> int:
    """``value`` as a whole number of days from 1 to ``MAX_DAYS``, else a ValidationError on ``days``. Only ASCII
    digits: Python's ``int`` also reads "1_0" as 10 and "３" or "٣" as 3, numbers nobody typed as such."""
    try:
        if isinstance(value, bool):
            raise ValueError
        text = str(value).strip()
        if not _DAYS.fullmatch(text):
            raise ValueError
        days = int(text)
    except (TypeError, ValueError):
        raise ValidationError(
            {"days": ValidationError(_("Enter a whole number of days."), code="days_invalid")}
        ) from None
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(
            {"days": ValidationError(_("From 1 to %(max)s days.") % {"max": MAX_DAYS}, code="days_out_of_range")}
        )
    return days


def period_days(subscription: Subscription, day: dt.date) -> int:
    """The length of the subscription's billing period containing ``day``: the month's days (calendar or from its
    anchor day); 1 for a plan charged by the day, whose price view is already a day's fee."""
    plan = subscription.plan
    if plan.charge_mode == ChargeMode.DAILY:
        return 1
    _start, end, full_start = period_for(plan, day, subscription.anchor_day)
    return (end - full_start).days


def line_amount(subscription: Subscription, days: int, day: dt.date) -> Decimal:
    """``days`` days of what the subscription pays a period at its price on ``day`` (net of its discounts); 0 for a
    plan without a fee (time plans) or a price."""
    view = price_view(subscription, day=day)
    if view is None:
        return Decimal("0.00")
    return days_of_fee(quantize(view.net), period_days(subscription, day), days)


def compensable_subscriptions(incident: Incident):
    """The subscriptions of the incident's affected subscribers that paid through it: live (active, or frozen since
    it ended: the credit is for days paid then, and it is given once, so one away now must not lose it), not frozen
    all through the incident (no fee was paid for those days), started by the day it ended (an address is affected
    whoever lives there: one who subscribed after the outage did not suffer it), of accounts not closed; in
    subscriber order (the ledger rows are locked in that order, as the billing run locks them)."""
    started_on = timezone.localtime(incident.starts_at).date()
    ended_on = timezone.localtime(incident.ends_at).date()
    # A freeze [starts_on, ended early or ends_on) that held all through the incident: no service to lose, no fee
    # paid for those days, whether or not it is over by now.
    frozen_throughout = Freeze.objects.filter(subscription=OuterRef("pk"), starts_on__lte=started_on).filter(
        Q(ended_early_on__isnull=True, ends_on__gt=ended_on) | Q(ended_early_on__gt=ended_on)
    )
    return (
        Subscription.objects.filter(
            subscriber_id__in=IncidentSubscriber.objects.filter(incident=incident).values("subscriber_id"),
            status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.FROZEN],
            started_on__lte=ended_on,
        )
        # Billing ends a closed account's subscriptions after the commit (a handler whose failure is only logged):
        # a closed account is never credited, whatever its subscriptions' status says.
        .exclude(subscriber__status=SubscriberStatus.CLOSED)
        .exclude(Exists(frozen_throughout))
        .select_related("plan", "subscriber")
        .order_by("subscriber_id", "pk")
    )


def check_can_compensate(user) -> None:
    check_perm(user, Perm.INCIDENT_COMPENSATE)
    check_perm(user, Perm.BILLING_ADJUST)
    if allowed_branch_ids(user) is not None:
        raise PermissionDenied(_("Only staff without a branch limit may compensate an incident."))


@transaction.atomic
def do_compensate_incident(incident: Incident, *, days, acting_user) -> tuple[Compensation, bool]:
    """Credit ``days`` days' fees to each compensable subscription; returns ``(compensation, created)``. Run again
    (at once or later) with the same days it returns the first with ``created=False`` and credits nothing; with other
    days it is refused (``already_compensated``). The incident must be resolved (``incident_open``)."""
    check_can_compensate(acting_user)
    days = clean_days(days)
    db_deadline(lock=30, statement=300)
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    existing = Compensation.objects.filter(incident=incident).first()
    if existing is not None:
        if existing.days != days:
            raise ValidationError(
                {
                    "days": ValidationError(
                        ngettext(
                            "This incident was compensated already, %(days)s day.",
                            "This incident was compensated already, %(days)s days.",
                            existing.days,
                        )
                        % {"days": existing.days},
                        code="already_compensated",
                    )
                }
            )
        return existing, False
    if incident.is_open:
        raise ValidationError(_("Resolve the incident before compensating it."), code="incident_open")
    today, now = clock.today(), clock.now()
    compensation = Compensation.objects.create(
        incident=incident, days=days, total=Decimal("0.00"), created_by=acting_user, created_at=now
    )
    reason = ngettext(
        "Compensation for the incident “%(title)s”: %(days)s day",
        "Compensation for the incident “%(title)s”: %(days)s days",
        days,
    ) % {"title": incident.title, "days": days}
    lines, total = [], Decimal("0.00")
    for subscription in compensable_subscriptions(incident):
        amount = line_amount(subscription, days, today)
        if amount <= 0:
            continue
        tx = billing.do_adjust_balance(
            subscription.subscriber,
            amount=amount,
            reason=reason,
            acting_user=acting_user,
            key=f"compensation:{incident.pk}:{subscription.pk}",
        )
        lines.append(
            CompensationLine(
                compensation=compensation,
                subscription=subscription,
                subscriber_id=subscription.subscriber_id,
                amount=amount,
                transaction=tx,
            )
        )
        total += amount
    CompensationLine.objects.bulk_create(lines)
    compensation.total = total
    compensation.save(update_fields=["total"])
    audit.record(
        actor=acting_user,
        action="incident.compensated",
        obj=incident,
        after={"days": days, "subscriptions": len(lines), "total": total},
    )
    events.emit("incident.compensated", incident_id=incident.pk)
    return compensation, True
