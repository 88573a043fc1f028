"""Turbo: a paid speed boost for some hours, charged once, ended on time by the worker."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from abonent.catalog.models import Turbo
from abonent.core import audit, clock, events
from abonent.core.money import format_money, quantize
from abonent.staff.permissions import Perm

from .. import ledger
from ..models import (
    ChargeKind,
    Subscription,
    SubscriptionEventKind,
    SubscriptionStatus,
    TurboActivation,
    TurboStatus,
)
from .common import _check, _event, _event_charge, _lock_subscription, _refuse_closed

# --- turbo ------------------------------------------------------------------------------------------------


def _moment(value: dt.datetime) -> str:
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


@transaction.atomic
def do_activate_turbo(subscription: Subscription, *, turbo: Turbo, acting_user, reason: str = "") -> TurboActivation:
    """Buy one of the plan's turbo options: charged now from the balance, the speed on from now for its hours.

    The subscription's row lock serialises purchases for it, so two at once cannot both pass the checks; the
    charge is keyed by the purchase's event and the schema allows one active turbo per subscription.
    """
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    _refuse_closed(subscription.subscriber)
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Turbo is only for an active subscription."), code="subscription_not_active")
    if not turbo.is_active or not subscription.plan.turbos.filter(pk=turbo.pk).exists():
        raise ValidationError(
            {"turbo": ValidationError(_("The plan does not offer this turbo."), code="turbo_not_offered")}
        )
    now = clock.now()
    current = TurboActivation.objects.filter(subscription=subscription, status=TurboStatus.ACTIVE).first()
    if current is not None and current.ends_at > now:
        raise ValidationError(
            _("A turbo is already on (until %(time)s).") % {"time": _moment(current.ends_at)},
            code="turbo_already_on",
        )
    _end_turbo_with(subscription, now)  # one that has run out, before the worker got to it
    price = quantize(turbo.price)
    account = ledger.subscriber_account(subscription.subscriber_id, lock=True)
    if price > 0 and account.balance + account.credit_limit < price:
        raise ValidationError(
            _("The balance does not cover the turbo's price of %(price)s.") % {"price": format_money(price)},
            code="insufficient_funds",
        )
    ends_at = now + dt.timedelta(hours=turbo.hours)
    event = _event(subscription, SubscriptionEventKind.TURBO, acting_user=acting_user, effective_at=now, reason=reason)
    _event_charge(
        subscription,
        event,
        ChargeKind.TURBO,
        price,
        clock.today(),
        timezone.localdate(ends_at),
        service=subscription.plan.service,
        memo=_("Turbo “%(name)s” until %(time)s") % {"name": turbo.name, "time": _moment(ends_at)},
        acting_user=acting_user,
    )
    activation = TurboActivation.objects.create(
        subscription=subscription,
        turbo=turbo,
        event=event,
        download_kbps=turbo.download_kbps,
        upload_kbps=turbo.upload_kbps,
        price=price,
        starts_at=now,
        ends_at=ends_at,
    )
    audit.record(
        actor=acting_user,
        action="billing.turbo_activated",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"turbo": turbo.name, "until": ends_at, "amount": price},
        reason=reason,
    )
    events.emit("subscription.turbo_started", subscription_id=subscription.pk, subscriber_id=subscription.subscriber_id)
    if price > 0:
        events.emit("billing.balance_changed", subscriber_id=subscription.subscriber_id)
    return activation


def _end_turbo(activation: TurboActivation, *, status: str, at: dt.datetime) -> bool:
    """Mark the turbo ended (once: a second call, or the worker racing a staff click, changes nothing) and
    have the NAS told after commit."""
    ended = TurboActivation.objects.filter(pk=activation.pk, status=TurboStatus.ACTIVE).update(
        status=status, ended_at=at
    )
    if ended:
        events.emit(
            "subscription.turbo_ended",
            subscription_id=activation.subscription_id,
            subscriber_id=activation.subscription.subscriber_id,
        )
    return bool(ended)


@transaction.atomic
def do_end_turbo(subscription: Subscription, *, acting_user, reason: str = "") -> TurboActivation:
    """Staff end the subscription's turbo before its time (a complaint, a mistake); nothing is refunded here:
    a refund is a balance adjustment with its own reason."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    now = clock.now()
    activation = TurboActivation.objects.filter(
        subscription=subscription, status=TurboStatus.ACTIVE, ends_at__gt=now
    ).first()
    if activation is None:
        raise ValidationError(_("No turbo is on."), code="turbo_not_active")
    activation.subscription = subscription
    _end_turbo(activation, status=TurboStatus.ENDED_EARLY, at=now)
    audit.record(
        actor=acting_user,
        action="billing.turbo_ended",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"turbo": activation.turbo.name, "ended_on": now},
        reason=reason,
    )
    activation.refresh_from_db()
    return activation


def _end_turbo_with(subscription: Subscription, now: dt.datetime) -> None:
    """End the subscription's turbo as of ``now``: finished if its time was up, else ended early (a freeze or a
    termination: no service, no boost, and no refund of it)."""
    for activation in TurboActivation.objects.filter(subscription=subscription, status=TurboStatus.ACTIVE):
        activation.subscription = subscription
        if activation.ends_at <= now:
            _end_turbo(activation, status=TurboStatus.FINISHED, at=activation.ends_at)
        else:
            _end_turbo(activation, status=TurboStatus.ENDED_EARLY, at=now)


def do_finish_due_turbos() -> int:
    """Finish every turbo whose time is up; each finish queues the CoA that gives the plan's speed back."""
    count = 0
    now = clock.now()
    due = TurboActivation.objects.filter(status=TurboStatus.ACTIVE, ends_at__lte=now).select_related("subscription")
    for activation in due.order_by("ends_at")[:5000]:
        with transaction.atomic():
            count += _end_turbo(activation, status=TurboStatus.FINISHED, at=activation.ends_at)
    return count
