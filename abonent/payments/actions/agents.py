"""Payment agents registered, edited and given a new secret by staff with ``payment.settings``.

Each action: access checked, everything validated before anything is written (``ValidationError`` naming the
field), atomic, an audit row (never the secret), and this process's cache of the agent dropped after commit (other
processes see the change within ``ABONENT_AGENT_CACHE_SECONDS``).
"""

from __future__ import annotations

import secrets
import zoneinfo
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.core.money import quantize
from abonent.staff.permissions import Perm

from ..models import Agent
from ..models.agents import hash_secret, parse_networks
from .common import check

# What staff edit; the secret has its own action, the code is fixed once payments arrived under it.
EDITABLE = (
    "name",
    "inn",
    "contract",
    "active",
    "login",
    "networks",
    "commission_percent",
    "commission_fixed",
    "commission_min",
    "min_sum",
    "max_sum",
    "active_accounts_only",
    "show_details",
    "time_zone",
)


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def _forget(code: str) -> None:
    from ..selectors.agents import forget_agent

    # Now (this process's next request reads the row, which this transaction has changed) and again after commit
    # (a request in between may have cached the row as it was).
    forget_agent(code)
    transaction.on_commit(lambda: forget_agent(code))


def _clean(agent: Agent) -> None:
    """The model's own validation plus what it cannot say: networks parse, the time zone exists, limits agree."""
    errors: dict[str, list] = {}
    try:
        networks = parse_networks(agent.networks)
        agent.networks = "\n".join(str(n) for n in networks)
    except ValueError as exc:
        errors["networks"] = [ValidationError(_("Not a network: %(error)s") % {"error": exc}, code="network_invalid")]
    agent.time_zone = (agent.time_zone or "").strip()
    if agent.time_zone:
        try:
            zoneinfo.ZoneInfo(agent.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = [ValidationError(_("Unknown time zone."), code="time_zone_invalid")]
    for name in ("commission_fixed", "commission_min", "min_sum", "max_sum"):
        try:
            setattr(agent, name, quantize(getattr(agent, name)))
        except (InvalidOperation, ValueError, TypeError):
            errors[name] = [ValidationError(_("Enter an amount."), code="amount_invalid")]
    try:
        agent.full_clean(exclude=["secret_hash", *errors])
    except ValidationError as exc:
        for name, items in exc.error_dict.items():
            errors.setdefault(name, []).extend(items)
    if "min_sum" not in errors and "max_sum" not in errors:
        if agent.min_sum <= Decimal("0"):
            errors["min_sum"] = [ValidationError(_("The smallest payment must be above zero."), code="min_sum")]
        elif agent.max_sum < agent.min_sum:
            errors["max_sum"] = [ValidationError(_("Smaller than the smallest payment."), code="max_sum")]
    if errors:
        raise ValidationError(errors)


def _snapshot(agent: Agent) -> dict:
    return {name: getattr(agent, name) for name in EDITABLE}


def do_create_agent(*, code: str, acting_user, **fields) -> tuple[Agent, str]:
    """Register an agent; returns it and its secret, which is shown once and kept only as a hash."""
    check(acting_user, Perm.PAYMENT_SETTINGS)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    secret = new_secret()
    now = clock.now()
    agent = Agent(code=(code or "").strip(), created_at=now, updated_at=now, secret_set_at=now, **fields)
    agent.secret_hash = hash_secret(secret)
    _clean(agent)
    try:
        with transaction.atomic():
            agent.save(force_insert=True)
            audit.record(actor=acting_user, action="payments.agent_created", obj=agent, after=_snapshot(agent))
    except IntegrityError:
        raise ValidationError(
            {"code": ValidationError(_("An agent with this code exists."), code="agent_code_taken")}
        ) from None
    _forget(agent.code)
    return agent, secret


def do_update_agent(agent: Agent, *, acting_user, **fields) -> Agent:
    check(acting_user, Perm.PAYMENT_SETTINGS)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        before = _snapshot(agent)
        for name, value in fields.items():
            setattr(agent, name, value)
        _clean(agent)
        after = _snapshot(agent)
        changed = [name for name in EDITABLE if before[name] != after[name]]
        if not changed:
            return agent
        agent.updated_at = clock.now()
        agent.save(update_fields=[*changed, "updated_at"])
        audit.record(
            actor=acting_user,
            action="payments.agent_changed",
            obj=agent,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    _forget(agent.code)
    return agent


def do_rotate_agent_secret(agent: Agent, *, acting_user) -> str:
    """A new secret for the agent (the old one stops working at once in this process, within the cache's seconds
    elsewhere); returns it, to be shown once."""
    check(acting_user, Perm.PAYMENT_SETTINGS)
    secret = new_secret()
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        agent.secret_hash = hash_secret(secret)
        agent.secret_set_at = agent.updated_at = clock.now()
        agent.save(update_fields=["secret_hash", "secret_set_at", "updated_at"])
        audit.record(actor=acting_user, action="payments.agent_secret_rotated", obj=agent)
    _forget(agent.code)
    return secret
