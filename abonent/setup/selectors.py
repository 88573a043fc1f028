"""What the first-run wizard reads: which steps are done, where to resume, whether to nag, and the lines a NAS
needs to use Abonent as its RADIUS server."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.urls import reverse

from abonent.catalog.forms import kbps_to_mbps
from abonent.catalog.models import Plan
from abonent.core.company import company_profile, name_from_settings_is_placeholder
from abonent.core.models import Branch
from abonent.network.models import Nas
from abonent.network.vendors import profile_for
from abonent.network.vendors.base import RadiusClientConfig
from abonent.payments.models import Agent
from abonent.payments.selectors.gateway import gateway_overview
from abonent.staff.permissions import Perm, has_perm

from .models import SetupStep, Step

STEPS: tuple[Step, ...] = tuple(Step)
SECRET_PLACEHOLDER = "<secret>"  # noqa: S105 - where the secret goes, not one


@dataclass(frozen=True)
class StepState:
    step: Step
    number: int
    done: bool
    # A step opens once every step before it is done (or it is done itself): the wizard is walked in order.
    reachable: bool
    current: bool

    @property
    def label(self) -> str:
        return str(self.step.label)

    @property
    def url(self) -> str:
        return reverse(f"setup:{self.step.value}")


def completed_steps() -> dict[str, SetupStep]:
    return {row.step: row for row in SetupStep.objects.all()}


def first_unfinished(done: dict[str, SetupStep] | None = None) -> Step | None:
    done = completed_steps() if done is None else done
    return next((step for step in STEPS if step.value not in done), None)


def is_finished() -> bool:
    return SetupStep.objects.filter(step__in=[s.value for s in STEPS]).count() == len(STEPS)


def step_states(current: Step | None, done: dict[str, SetupStep]) -> list[StepState]:
    states, open_so_far = [], True
    for number, step in enumerate(STEPS, start=1):
        is_done = step.value in done
        states.append(StepState(step, number, is_done, open_so_far or is_done, step == current))
        open_so_far = open_so_far and is_done
    return states


def can_open(step: Step, done: dict[str, SetupStep]) -> bool:
    return next(s for s in step_states(None, done) if s.step == step).reachable


def shows_banner(user) -> bool:
    """The console's "Finish set-up" banner: for whoever may run the wizard, on an installation the environment
    names no company for, until every step is done."""
    return has_perm(user, Perm.SETUP_MANAGE) and name_from_settings_is_placeholder() and not is_finished()


@dataclass(frozen=True)
class PlanRow:
    plan: Plan
    download_mbps: Decimal
    upload_mbps: Decimal


@dataclass(frozen=True)
class Summary:
    company: object
    branches: list[Branch]
    nas: list[Nas]
    plans: list[Plan]

    @property
    def plan_rows(self) -> list[PlanRow]:
        return [PlanRow(p, kbps_to_mbps(p.download_kbps), kbps_to_mbps(p.upload_kbps)) for p in self.plans]


def summary() -> Summary:
    return Summary(
        company=company_profile(),
        branches=list(Branch.objects.filter(is_active=True)),
        nas=list(Nas.objects.filter(is_active=True)),
        plans=list(Plan.objects.filter(is_archived=False, is_public=True).select_related("service")),
    )


def environment_lines(profile) -> list[str]:
    """The lines of /etc/abonent/abonent.env that make the processes run with the currency and time zone chosen in
    the wizard, when they run with others now (both are read once, at a process's start)."""
    if profile is None:
        return []
    lines = []
    if profile.currency and profile.currency != settings.ABONENT_CURRENCY:
        lines.append(f"ABONENT_CURRENCY={profile.currency}")
    if profile.time_zone and profile.time_zone != settings.TIME_ZONE:
        lines.append(f"ABONENT_TIME_ZONE={profile.time_zone}")
    return lines


def suggested_radius_address(request_host: str) -> str:
    """Where the NAS reaches Abonent: the address the RADIUS server is bound to when it is one, else the console's
    own host when that is an IP address (the admin corrects it when the NAS sees another)."""
    for candidate in (settings.ABONENT_RADIUS_BIND, request_host.rsplit(":", 1)[0].strip("[]")):
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if not address.is_unspecified:
            return str(address)
    return ""


def radius_config(nas: Nas, *, server: str, secret: str | None = None) -> list[str]:
    """The lines that point ``nas`` at Abonent. The secret is shown once, when the NAS is made; after that the
    lines carry ``<secret>`` where it goes (it is stored encrypted and never shown again, docs/radius.md)."""
    config = RadiusClientConfig(
        server=server,
        secret=secret or SECRET_PLACEHOLDER,
        auth_port=settings.ABONENT_RADIUS_AUTH_PORT,
        acct_port=settings.ABONENT_RADIUS_ACCT_PORT,
        coa_port=nas.coa_port,
        interim_seconds=nas.interim_interval,
        nas_identifier=nas.name,
        message_authenticator=nas.require_message_authenticator,
    )
    return profile_for(nas.vendor).radius_config(config)


def wizard_nas(done: dict[str, SetupStep]) -> tuple[Nas | None, str]:
    """The NAS the wizard registered and Abonent's address as that NAS sees it, for the step's later visits."""
    data = done[Step.NAS.value].data if Step.NAS.value in done else {}
    nas = Nas.objects.filter(pk=data["nas_id"]).first() if data.get("nas_id") else None
    return nas, data.get("radius_address", "")


@dataclass(frozen=True)
class PaymentChannels:
    gateways: list
    agents: int
    fiscal_provider: str


def payment_channels() -> PaymentChannels:
    return PaymentChannels(
        gateways=gateway_overview(), agents=Agent.objects.count(), fiscal_provider=settings.ABONENT_FISCAL_PROVIDER
    )
