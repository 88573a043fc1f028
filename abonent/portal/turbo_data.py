"""The services page's turbo: the options the plan sells, one bought as shown (its price, hours and speeds) or
not at all (``as_seen``; ``PreviewChanged``), and billing's refusals in its own words (``services_data``'s rule)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from abonent.billing import actions as billing
from abonent.billing import selectors as billing_data
from abonent.billing.models import Subscription, SubscriptionStatus, TurboActivation
from abonent.catalog.models import Turbo
from abonent.core import clock
from abonent.core.money import format_money, quantize

from . import as_seen
from .busy import money_write
from .plans_data import PreviewChanged, Speed, closed_refusal

# --- turbo ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurboCard:
    turbo: Turbo

    @property
    def speed(self) -> Speed:
        return Speed(self.turbo.download_kbps, self.turbo.upload_kbps)


@dataclass
class TurboOffer:
    subscription: Subscription
    offered: list[TurboCard] = field(default_factory=list)
    active: TurboActivation | None = None

    @property
    def active_speed(self) -> Speed | None:
        return Speed(self.active.download_kbps, self.active.upload_kbps) if self.active else None


@dataclass(frozen=True)
class TurboPreview:
    subscription_id: int
    turbo: Turbo
    price: Decimal
    ends_at: dt.datetime
    balance_before: Decimal

    @property
    def balance_after(self) -> Decimal:
        return self.balance_before - self.price


def turbo_offers(rows: list[Subscription]) -> list[TurboOffer]:
    """Per subscription: the turbo options its plan sells (for an active one) and the turbo on now."""
    active = billing_data.active_turbos([s.pk for s in rows])
    offers = []
    for s in rows:
        on_sale = s.status == SubscriptionStatus.ACTIVE and not s.subscriber.is_closed
        offered = [TurboCard(t) for t in billing_data.turbos_offered(s)] if on_sale else []
        if offered or s.pk in active:
            offers.append(TurboOffer(s, offered, active.get(s.pk)))
    return offers


def offered_turbo(subscription: Subscription, turbo_id) -> Turbo | None:
    try:
        return billing_data.turbos_offered(subscription).filter(pk=int(turbo_id)).first()
    except (TypeError, ValueError, OverflowError):
        return None


def turbo_preview(subscription: Subscription, turbo: Turbo) -> TurboPreview:
    """Buying ``turbo`` now, or billing's refusal of it (its codes and words) as ValidationError."""
    if subscription.subscriber.is_closed:
        raise closed_refusal()
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Turbo is only for an active subscription."), code="subscription_not_active")
    now = clock.now()
    current = billing_data.active_turbos([subscription.pk]).get(subscription.pk)
    if current is not None:
        raise ValidationError(
            _("A turbo is already on (until %(time)s).") % {"time": _moment(current.ends_at)}, code="turbo_already_on"
        )
    price = quantize(turbo.price)
    balance = billing_data.get_balance(subscription.subscriber)
    if price > 0 and balance.available < price:
        raise ValidationError(
            _("The balance does not cover the turbo's price of %(price)s.") % {"price": format_money(price)},
            code="insufficient_funds",
        )
    return TurboPreview(subscription.pk, turbo, price, now + dt.timedelta(hours=turbo.hours), balance.balance)


def _moment(value: dt.datetime) -> str:
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


@dataclass(frozen=True)
class SeenTurbo:
    """The turbo's terms the subscriber saw (``as_seen``): price, hours and speeds (the time it ends follows)."""

    price: Decimal | None = None
    hours: int | None = None
    download_kbps: int | None = None
    upload_kbps: int | None = None

    @classmethod
    def of(cls, turbo: Turbo) -> SeenTurbo:
        return cls(quantize(turbo.price), turbo.hours, turbo.download_kbps, turbo.upload_kbps)


def buy_turbo_as_seen(subscription: Subscription, turbo: Turbo, seen: SeenTurbo) -> TurboActivation:
    """Buy ``turbo`` if it is what ``seen`` says (None: not compared); one at a time, by billing's lock."""
    with money_write():
        activation = billing.do_activate_turbo(subscription, turbo=turbo, acting_user=None)
        hours = round((activation.ends_at - activation.starts_at).total_seconds() / 3600)
        if not as_seen.matches(seen, activation, hours=hours):
            raise PreviewChanged(None)  # the caller previews again once this is rolled back
        return activation
