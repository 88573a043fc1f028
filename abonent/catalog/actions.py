"""Writes of the catalog. Prices are versioned: a new price is a new row from a date, never an edit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.core.money import AMOUNT_LIMIT, format_money, quantize
from abonent.staff.permissions import Perm, check_perm

from .models import ChargeMode, Plan, PlanPrice, Service, TimePackage, Turbo


@transaction.atomic
def do_create_service(*, code: str, name: str, kind: str, acting_user, one_off_price: Decimal | None = None) -> Service:
    check_perm(acting_user, Perm.CATALOG_MANAGE)
    if one_off_price is not None and quantize(one_off_price) < 0:
        raise ValidationError(
            {"one_off_price": ValidationError(_("A price cannot be negative."), code="amount_negative")}
        )
    service = Service(code=code, name=name, kind=kind, one_off_price=one_off_price)
    service.full_clean()
    service.save()
    audit.record(actor=acting_user, action="catalog.service_created", obj=service, after=audit.snapshot(service))
    return service


@transaction.atomic
def do_create_plan(
    *,
    acting_user,
    monthly_fee: Decimal,
    valid_from: dt.date | None = None,
    daily_fee: Decimal | None = None,
    activation_fee: Decimal = Decimal("0"),
    unit_price: Decimal | None = None,
    **fields,
) -> Plan:
    """Create a plan with its first price version. ``acting_user=None``: the system (a migration's plans file)."""
    if acting_user is not None:
        check_perm(acting_user, Perm.CATALOG_MANAGE)
    if "minimum_session_charge" in fields:
        fields["minimum_session_charge"] = _time_money(fields["minimum_session_charge"], "minimum_session_charge")
    switchable_to = fields.pop("switchable_to", [])
    turbos = fields.pop("turbos", [])
    plan = Plan(**fields)
    plan.full_clean()
    plan.save()
    if switchable_to:
        plan.switchable_to.set(switchable_to)
    if turbos:
        plan.turbos.set(turbos)
    audit.record(actor=acting_user, action="catalog.plan_created", obj=plan, after=audit.snapshot(plan))
    _add_price(
        plan,
        valid_from=valid_from or clock.today(),
        monthly_fee=monthly_fee,
        daily_fee=daily_fee,
        activation_fee=activation_fee,
        unit_price=unit_price,
        acting_user=acting_user,
        allow_past=True,
    )
    return plan


@transaction.atomic
def do_add_plan_price(
    plan: Plan,
    *,
    valid_from: dt.date,
    monthly_fee: Decimal,
    acting_user,
    daily_fee: Decimal | None = None,
    activation_fee: Decimal = Decimal("0"),
    unit_price: Decimal | None = None,
) -> PlanPrice:
    """A new price from ``valid_from`` (tomorrow or later: periods already charged keep the price they used)."""
    check_perm(acting_user, Perm.CATALOG_MANAGE)
    return _add_price(
        plan,
        valid_from=valid_from,
        monthly_fee=monthly_fee,
        daily_fee=daily_fee,
        activation_fee=activation_fee,
        unit_price=unit_price,
        acting_user=acting_user,
        allow_past=False,
    )


def _time_money(value, field: str) -> Decimal:
    amount = quantize(value or 0)
    if amount < 0:
        raise ValidationError({field: ValidationError(_("A price cannot be negative."), code="amount_negative")})
    if amount > AMOUNT_LIMIT:
        raise ValidationError(
            {
                field: ValidationError(
                    _("The amount must not exceed %(limit)s.") % {"limit": format_money(AMOUNT_LIMIT)},
                    code="amount_too_large",
                )
            }
        )
    return amount


def _add_price(
    plan, *, valid_from, monthly_fee, daily_fee, activation_fee, acting_user, allow_past, unit_price=None
) -> PlanPrice:
    errors = {}
    unit_price = quantize(unit_price) if unit_price is not None else None
    if plan.charge_mode == ChargeMode.TIME:
        # A time plan has no recurring fee: its time online is what is charged.
        monthly_fee, daily_fee = Decimal("0"), None
        if unit_price is None:
            errors["unit_price"] = ValidationError(
                _("A plan charged by time online needs a price per unit of time."), code="required"
            )
    if unit_price is not None and unit_price < 0:
        errors["unit_price"] = ValidationError(_("A price cannot be negative."), code="amount_negative")
    monthly_fee = quantize(monthly_fee)
    activation_fee = quantize(activation_fee)
    daily_fee = quantize(daily_fee) if daily_fee is not None else None
    if monthly_fee < 0 or activation_fee < 0 or (daily_fee is not None and daily_fee < 0):
        errors["monthly_fee"] = ValidationError(_("A price cannot be negative."), code="amount_negative")
    if plan.daily_pricing == "fixed" and plan.charge_mode == "daily" and daily_fee is None:
        errors["daily_fee"] = ValidationError(_("This plan is priced per day: enter the daily fee."), code="required")
    if not allow_past and valid_from < clock.today():
        errors["valid_from"] = ValidationError(
            _("A new price cannot start in the past: charges already made keep their price."), code="date_in_past"
        )
    elif not allow_past and valid_from == clock.today():
        # Today's run may have charged today at the current price already; a version from today would price the
        # same day again (an unfreeze, a plan change) at another price.
        errors["valid_from"] = ValidationError(
            _("A new price starts tomorrow at the earliest: today may be charged at the current price already."),
            code="date_not_future",
        )
    amounts = (
        ("monthly_fee", monthly_fee),
        ("activation_fee", activation_fee),
        ("daily_fee", daily_fee),
        ("unit_price", unit_price),
    )
    for name, amount in amounts:
        if amount is not None and amount > AMOUNT_LIMIT:
            errors[name] = ValidationError(
                _("The amount must not exceed %(limit)s.") % {"limit": format_money(AMOUNT_LIMIT)},
                code="amount_too_large",
            )
    if errors:
        raise ValidationError(errors)
    price = PlanPrice(
        plan=plan,
        valid_from=valid_from,
        monthly_fee=monthly_fee,
        daily_fee=daily_fee,
        activation_fee=activation_fee,
        unit_price=unit_price,
        created_at=clock.now(),
    )
    try:
        with transaction.atomic():
            price.save(force_insert=True)
    except IntegrityError as exc:
        raise ValidationError(
            {
                "valid_from": ValidationError(
                    _("The plan already has a price from %(date)s.")
                    % {"date": date_format(valid_from, "SHORT_DATE_FORMAT")},
                    code="price_exists",
                )
            }
        ) from exc
    audit.record(
        actor=acting_user,
        action="catalog.price_added",
        obj=plan,
        after={
            "valid_from": valid_from,
            "monthly_fee": monthly_fee,
            "daily_fee": daily_fee,
            "activation_fee": activation_fee,
            "unit_price": unit_price,
        },
    )
    return price


# --- turbo options ------------------------------------------------------------------------------------------


def _check_turbo_price(price) -> Decimal:
    price = quantize(price)
    if price < 0:
        raise ValidationError({"price": ValidationError(_("A price cannot be negative."), code="amount_negative")})
    return price


@transaction.atomic
def do_create_turbo(*, acting_user, plans=(), **fields) -> Turbo:
    """A turbo option, offered on ``plans`` (more can be added from a plan's form)."""
    check_perm(acting_user, Perm.CATALOG_MANAGE)
    fields["price"] = _check_turbo_price(fields.get("price", 0))
    turbo = Turbo(**fields)
    turbo.full_clean()
    turbo.save()
    if plans:
        turbo.plans.set(plans)
    audit.record(
        actor=acting_user,
        action="catalog.turbo_created",
        obj=turbo,
        after={**audit.snapshot(turbo), "plans": sorted(p.pk for p in plans)},
    )
    return turbo


@transaction.atomic
def do_update_turbo(turbo: Turbo, *, acting_user, plans=None, **fields) -> Turbo:
    """Change an option: later purchases get the new terms, turbos already bought keep theirs."""
    check_perm(acting_user, Perm.CATALOG_MANAGE)
    turbo = Turbo.objects.select_for_update().get(pk=turbo.pk)
    before = {**audit.snapshot(turbo), "plans": sorted(turbo.plans.values_list("pk", flat=True))}
    if "price" in fields:
        fields["price"] = _check_turbo_price(fields["price"])
    for name, value in fields.items():
        setattr(turbo, name, value)
    turbo.full_clean()
    turbo.save()
    if plans is not None:
        turbo.plans.set(plans)
    old, new = audit.diff(before, {**audit.snapshot(turbo), "plans": sorted(turbo.plans.values_list("pk", flat=True))})
    audit.record(actor=acting_user, action="catalog.turbo_updated", obj=turbo, before=old, after=new)
    return turbo


# --- time packages ------------------------------------------------------------------------------------------


@transaction.atomic
def do_create_time_package(*, acting_user, plans=(), **fields) -> TimePackage:
    """A time package ("10 hours within 30 days"), sold to subscribers of ``plans`` (time plans only)."""
    check_perm(acting_user, Perm.CATALOG_MANAGE)
    fields["price"] = _time_money(fields.get("price", 0), "price")
    package = TimePackage(**fields)
    package.full_clean()
    not_time = [p for p in plans if p.charge_mode != ChargeMode.TIME]
    if not_time:
        raise ValidationError(
            {
                "plans": ValidationError(
                    _("Time packages are sold only on plans charged by time online."), code="plan_not_time"
                )
            }
        )
    package.save()
    if plans:
        package.plans.set(plans)
    audit.record(
        actor=acting_user,
        action="catalog.time_package_created",
        obj=package,
        after={**audit.snapshot(package), "plans": sorted(p.pk for p in plans)},
    )
    return package
