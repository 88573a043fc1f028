"""Time packages: prepaid time online for subscriptions on time plans, bought from the balance."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.catalog.models import ChargeMode, TimePackage
from abonent.core import audit, clock, events
from abonent.core.money import format_money, quantize
from abonent.staff.permissions import Perm

from .. import ledger
from ..models import ChargeKind, Subscription, SubscriptionEventKind, SubscriptionStatus, TimePackagePurchase
from .common import _check, _event, _event_charge, _lock_subscription, _refuse_closed


@transaction.atomic
def do_buy_time_package(
    subscription: Subscription, *, package: TimePackage, acting_user, reason: str = "", form_key: str = ""
) -> TimePackagePurchase:
    """Buy one of the plan's time packages: its price charged now from the balance, its time usable from now for
    its days, before money. The subscription's row lock serialises purchases and rating; the charge is keyed by
    the purchase's event (one charge however often it is retried). ``form_key``: the portal form's one-time key;
    the same key again returns the purchase it made (a double submit), unique per subscription."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    _refuse_closed(subscription.subscriber)
    digest = hashlib.sha256(form_key.encode("utf-8", "surrogatepass")).hexdigest() if form_key else ""
    if digest:
        # Under the row lock: a second submit waits for the first and finds its purchase (the UNIQUE constraint
        # stands behind this).
        done = TimePackagePurchase.objects.filter(subscription=subscription, form_key=digest).first()
        if done is not None:
            return done
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Time packages are only for an active subscription."), code="subscription_not_active")
    if subscription.plan.charge_mode != ChargeMode.TIME:
        raise ValidationError(_("Time packages are only for plans charged by time online."), code="plan_not_time")
    if not package.is_active or not subscription.plan.time_packages.filter(pk=package.pk).exists():
        raise ValidationError(
            {"package": ValidationError(_("The plan does not offer this time package."), code="package_not_offered")}
        )
    price = quantize(package.price)
    account = ledger.subscriber_account(subscription.subscriber_id, lock=True)
    if price > 0 and account.balance + account.credit_limit < price:
        raise ValidationError(
            _("The balance does not cover the package's price of %(price)s.") % {"price": format_money(price)},
            code="insufficient_funds",
        )
    now = clock.now()
    expires_at = now + dt.timedelta(days=package.validity_days)
    event = _event(
        subscription, SubscriptionEventKind.TIME_PACKAGE, acting_user=acting_user, effective_at=now, reason=reason
    )
    today = clock.today()
    _event_charge(
        subscription,
        event,
        ChargeKind.TIME_PACKAGE,
        price,
        today,
        today + dt.timedelta(days=package.validity_days),
        service=subscription.plan.service,
        memo=_("Time package “%(name)s”") % {"name": package.name},
        acting_user=acting_user,
    )
    purchase = TimePackagePurchase.objects.create(
        subscription=subscription,
        package=package,
        event=event,
        seconds=package.seconds,
        price=price,
        starts_at=now,
        expires_at=expires_at,
        created_at=now,
        form_key=digest,
    )
    audit.record(
        actor=acting_user,
        action="billing.time_package_bought",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"package": package.name, "seconds": package.seconds, "until": expires_at, "amount": price},
        reason=reason,
    )
    events.emit(
        "billing.time_package_bought", subscription_id=subscription.pk, subscriber_id=subscription.subscriber_id
    )
    if price > 0:
        events.emit("billing.balance_changed", subscriber_id=subscription.subscriber_id)
    return purchase
