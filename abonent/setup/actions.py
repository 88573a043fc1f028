"""The first-run wizard's writes. Each step's action saves what the step asks through the owning app's actions
(core's company details and branches, network's NAS, catalog's plans) and marks the step done, in one
transaction: a step either happened whole or not at all, and a refusal (a bad INN, a taken NAS address) writes
nothing, the step's mark included.

Access: ``setup.manage`` for every step; the owning app's action checks its own permission as well (the
administrator holds both).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.catalog.actions import do_create_plan, do_create_service
from abonent.catalog.models import Plan, Service, ServiceKind
from abonent.core import audit, clock
from abonent.core.actions import do_create_branch, do_save_company_profile
from abonent.core.models import Branch
from abonent.network.actions import do_create_nas
from abonent.network.models import Nas
from abonent.staff.permissions import Perm, check_perm

from .models import SetupStep, Step

INTERNET_SERVICE_CODE = "internet"


def _mark_done(step: Step, *, acting_user, data: dict | None = None) -> SetupStep:
    """Record the step as done (again): one row a step, its data merged with what it kept before."""
    row, created = SetupStep.objects.select_for_update().get_or_create(
        step=step, defaults={"completed_at": clock.now(), "completed_by": acting_user, "data": data or {}}
    )
    if not created:
        row.completed_at = clock.now()
        row.completed_by = acting_user
        row.data = {**row.data, **(data or {})}
        row.save(update_fields=["completed_at", "completed_by", "data"])
    audit.record(actor=acting_user, action="setup.step_completed", obj=row, after={"step": step.value, **(data or {})})
    return row


def _refuse(field: str, message: str, code: str) -> None:
    raise ValidationError({field: ValidationError(message, code=code)})


@transaction.atomic
def do_save_company_step(*, acting_user, **details) -> SetupStep:
    check_perm(acting_user, Perm.SETUP_MANAGE)
    do_save_company_profile(acting_user=acting_user, **details)
    return _mark_done(Step.COMPANY, acting_user=acting_user)


@transaction.atomic
def do_save_taxes_step(*, acting_user, tax_system: str, vat_mode: str) -> SetupStep:
    check_perm(acting_user, Perm.SETUP_MANAGE)
    do_save_company_profile(acting_user=acting_user, tax_system=tax_system, vat_mode=vat_mode)
    return _mark_done(Step.TAXES, acting_user=acting_user)


@transaction.atomic
def do_save_region_step(*, acting_user, currency: str, time_zone: str) -> SetupStep:
    check_perm(acting_user, Perm.SETUP_MANAGE)
    do_save_company_profile(acting_user=acting_user, currency=currency.upper(), time_zone=time_zone)
    return _mark_done(Step.REGION, acting_user=acting_user)


@transaction.atomic
def do_add_branch(*, acting_user, code: str, name: str, time_zone: str = "") -> Branch:
    check_perm(acting_user, Perm.SETUP_MANAGE)
    return do_create_branch(acting_user=acting_user, code=code, name=name, time_zone=time_zone)


@transaction.atomic
def do_finish_branches_step(*, acting_user) -> SetupStep:
    """Done when subscribers have a branch to belong to."""
    check_perm(acting_user, Perm.SETUP_MANAGE)
    if not Branch.objects.filter(is_active=True).exists():
        _refuse("name", _("Add at least one branch: every subscriber belongs to one."), "no_branch")
    return _mark_done(Step.BRANCHES, acting_user=acting_user)


@transaction.atomic
def do_add_first_nas(
    *, acting_user, radius_address: str, name: str, ip_address: str, secret: str, vendor: str, interim_interval: int
) -> Nas:
    """The NAS, through network's action (secret encrypted, audited), and the step done with the address the NAS
    reaches Abonent at, for the configuration lines on later visits."""
    check_perm(acting_user, Perm.SETUP_MANAGE)
    nas = do_create_nas(
        acting_user=acting_user,
        name=name,
        ip_address=ip_address,
        secret=secret,
        vendor=vendor,
        interim_interval=interim_interval,
    )
    _mark_done(Step.NAS, acting_user=acting_user, data={"nas_id": nas.pk, "radius_address": radius_address})
    return nas


@transaction.atomic
def do_finish_nas_step(*, acting_user) -> SetupStep:
    """Done once a NAS is registered (here or on the network pages)."""
    check_perm(acting_user, Perm.SETUP_MANAGE)
    if not Nas.objects.filter(is_active=True).exists():
        _refuse("name", _("Register the NAS first: without one nobody can connect."), "no_nas")
    return _mark_done(Step.NAS, acting_user=acting_user)


def internet_service(*, acting_user) -> Service:
    """The internet-access service plans are sold under: the first active one, made on the first plan."""
    service = Service.objects.filter(kind=ServiceKind.INTERNET, is_active=True).order_by("pk").first()
    if service is not None:
        return service
    code = INTERNET_SERVICE_CODE
    if Service.objects.filter(code=code).exists():
        code = f"{INTERNET_SERVICE_CODE}-{Service.objects.count() + 1}"
    return do_create_service(code=code, name=_("Internet access"), kind=ServiceKind.INTERNET, acting_user=acting_user)


@transaction.atomic
def do_add_first_plan(
    *, acting_user, code: str, name: str, monthly_fee: Decimal, download_kbps: int, upload_kbps: int
) -> Plan:
    """A monthly, calendar-period plan offered to new subscribers, priced from today: the usual first plan.
    Everything else a plan can be (daily, by time, traffic quotas) is on the catalog's own form."""
    check_perm(acting_user, Perm.SETUP_MANAGE)
    return do_create_plan(
        acting_user=acting_user,
        code=code,
        name=name,
        service=internet_service(acting_user=acting_user),
        monthly_fee=monthly_fee,
        download_kbps=download_kbps,
        upload_kbps=upload_kbps,
        is_public=True,
    )


@transaction.atomic
def do_finish_plans_step(*, acting_user) -> SetupStep:
    check_perm(acting_user, Perm.SETUP_MANAGE)
    if not Plan.objects.filter(is_archived=False, is_public=True).exists():
        _refuse("name", _("Add at least one plan offered to new subscribers."), "no_plan")
    return _mark_done(Step.PLANS, acting_user=acting_user)


@transaction.atomic
def do_finish_payments_step(*, acting_user) -> SetupStep:
    """The administrator has seen which channels take money: the cash desk, terminals, gateways, receipts."""
    check_perm(acting_user, Perm.SETUP_MANAGE)
    data = {"fiscal_provider": settings.ABONENT_FISCAL_PROVIDER}
    return _mark_done(Step.PAYMENTS, acting_user=acting_user, data=data)
