"""Reading access states: what RADIUS, the CoA queue, the console and the API ask."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext_lazy as _

from abonent.core import clock
from abonent.staff.permissions import allowed_branch_ids, scope_to_branches
from abonent.subscribers.models import SubscriberStatus

from .models import (
    DENIED_STATES,
    REDIRECTED_STATES,
    AccessState,
    AccessStateKind,
    AccessTransition,
    DunningRule,
    Exemption,
)


def _states(states, subscriber_ids: Iterable[int] | None):
    rows = AccessState.objects.filter(state__in=[s.value for s in states])
    if subscriber_ids is not None:
        rows = rows.filter(subscriber_id__in=list(subscriber_ids))
    return rows


def redirected_subscribers(subscriber_ids: Iterable[int] | None = None) -> set[int]:
    """Subscribers whose web traffic goes to the payment page (``restricted``), among ``subscriber_ids`` if
    given. Over everyone it reads the partial index of states not active: cheap enough every few seconds."""
    return set(_states(REDIRECTED_STATES, subscriber_ids).values_list("subscriber_id", flat=True))


def denied_subscribers(subscriber_ids: Iterable[int] | None = None) -> dict[int, str]:
    """Subscribers refused access (suspended for debt, blocked by an operator, terminated) → their state."""
    return dict(_states(DENIED_STATES, subscriber_ids).values_list("subscriber_id", "state"))


def state_of(subscriber_id: int) -> str:
    """The state of one subscriber; ``active`` for one never evaluated."""
    state = AccessState.objects.filter(subscriber_id=subscriber_id).values_list("state", flat=True).first()
    return state or AccessStateKind.ACTIVE


# --- the console and the API ---------------------------------------------------------------------------------

QUEUE_STATES = (
    AccessStateKind.WARNED,
    AccessStateKind.RESTRICTED,
    AccessStateKind.SUSPENDED,
    AccessStateKind.BLOCKED,
    AccessStateKind.TERMINATED,
)
# Badge colours (Bootstrap classes; "orange" is the console's own, see templates/dunning/_badge.html).
STATE_COLOURS = {
    AccessStateKind.ACTIVE: "success",
    AccessStateKind.WARNED: "warning",
    AccessStateKind.RESTRICTED: "orange",
    AccessStateKind.SUSPENDED: "danger",
    AccessStateKind.BLOCKED: "danger",
    AccessStateKind.TERMINATED: "danger",
    AccessStateKind.FROZEN: "primary",
}


@dataclass(frozen=True)
class AccessSummary:
    """One subscriber's access as the card and the API show it; ``stored`` is False for a subscriber never
    evaluated (then active, since it was created)."""

    state: str
    since: dt.datetime | None
    owed: Decimal
    runout_on: dt.date | None
    days_left: int | None
    exempt: bool
    reason: str
    restricted_since: dt.datetime | None
    exemption: Exemption | None
    stored: bool

    @property
    def label(self) -> str:
        return AccessStateKind(self.state).label

    @property
    def colour(self) -> str:
        return STATE_COLOURS.get(self.state, "secondary")

    @property
    def in_debt(self) -> bool:
        return self.owed > 0 and self.state in (AccessStateKind.RESTRICTED, AccessStateKind.SUSPENDED)


def live_exemptions(today: dt.date):
    return Exemption.objects.filter(revoked_at__isnull=True, starts_on__lte=today, expires_on__gte=today)


def exemption_in_force(exemptions: list[Exemption], today: dt.date) -> Exemption | None:
    """Of a subscriber's exemptions (``subscriber_exemptions``), the one covering today: its own first, then a
    group's, the latest-ending."""
    live = [e for e in exemptions if exemption_status(e, today) == ExemptionStatus.ACTIVE]
    live.sort(key=lambda e: (e.subscriber_id is None, -e.expires_on.toordinal()))
    return live[0] if live else None


def access_summary(subscriber, exemptions: list[Exemption] | None = None) -> AccessSummary:
    """``exemptions``: the subscriber's, if the caller has read them already (the card's panel has)."""
    row = AccessState.objects.filter(subscriber_id=subscriber.pk).first()
    if exemptions is None:
        exemptions = subscriber_exemptions(subscriber)
    exemption = exemption_in_force(exemptions, clock.today())
    if row is None:
        return AccessSummary(
            AccessStateKind.ACTIVE, subscriber.created_at, Decimal("0.00"), None, None, exemption is not None, "",
            None, exemption, stored=False,
        )  # fmt: skip
    days_left = max((row.runout_on - clock.today()).days, 0) if row.runout_on else None
    return AccessSummary(
        row.state, row.since, row.owed, row.runout_on, days_left, row.exempt or exemption is not None, row.reason,
        row.restricted_since, exemption, stored=True,
    )  # fmt: skip


def transitions_of(subscriber_id: int, *, limit: int = 20, before_id: int | None = None) -> list[AccessTransition]:
    """The newest changes first; ``before_id`` pages on (ids grow with time within a subscriber's history)."""
    qs = AccessTransition.objects.filter(subscriber_id=subscriber_id).select_related("actor").order_by("-at", "-id")
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    return list(qs[:limit])


class ExemptionStatus(models.TextChoices):
    ACTIVE = "active", _("In force")
    SCHEDULED = "scheduled", _("Not started yet")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


def exemption_status(exemption: Exemption, today: dt.date | None = None) -> str:
    today = today or clock.today()
    if exemption.revoked_at is not None:
        return ExemptionStatus.REVOKED
    if exemption.expires_on < today:
        return ExemptionStatus.EXPIRED
    if exemption.starts_on > today:
        return ExemptionStatus.SCHEDULED
    return ExemptionStatus.ACTIVE


def visible_exemptions(user):
    """Exemptions of the subscribers ``user`` may see, and the group exemptions (groups span branches)."""
    branch_ids = allowed_branch_ids(user)
    qs = Exemption.objects.select_related("subscriber", "group", "created_by", "revoked_by")
    if branch_ids is not None:
        qs = qs.filter(Q(subscriber__isnull=True) | Q(subscriber__branch_id__in=branch_ids))
    return qs


GROUP_SCOPE_MESSAGE = _(
    "A group spans branches: only staff without a branch limit exempt a whole group or revoke such an exemption."
)


def check_exemption_scope(user, *, group) -> None:
    """A group exemption reaches subscribers of every branch, so a branch-limited user may not make or end one."""
    if group is not None and allowed_branch_ids(user) is not None:
        raise PermissionDenied(GROUP_SCOPE_MESSAGE)


def list_exemptions(user, *, status: str = "", subscriber_id: int | None = None):
    qs = visible_exemptions(user)
    today = clock.today()
    if subscriber_id is not None:
        qs = qs.filter(subscriber_id=subscriber_id)
    if status == ExemptionStatus.ACTIVE:
        qs = live_exemptions(today).filter(pk__in=qs.values("pk"))
    elif status == ExemptionStatus.SCHEDULED:
        qs = qs.filter(revoked_at__isnull=True, starts_on__gt=today)
    elif status == ExemptionStatus.EXPIRED:
        qs = qs.filter(revoked_at__isnull=True, expires_on__lt=today)
    elif status == ExemptionStatus.REVOKED:
        qs = qs.filter(revoked_at__isnull=False)
    return qs.select_related("subscriber", "group", "created_by", "revoked_by").order_by("-created_at", "-id")


def subscriber_exemptions(subscriber, *, limit: int = 50) -> list[Exemption]:
    """The subscriber's own exemptions and its groups', newest first (one query)."""
    scope = Q(subscriber_id=subscriber.pk) | Q(group__in=subscriber.groups.all())
    return list(
        Exemption.objects.filter(scope)
        .select_related("group", "created_by", "revoked_by")
        .order_by("-created_at")[:limit]
    )


def list_rules() -> list[DunningRule]:
    """The default rule first, then the groups', then the plans'."""
    return list(
        DunningRule.objects.select_related("group", "plan").order_by("-is_default", "plan_id", "group__name", "name")
    )


# --- the dunning queue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    states: tuple[str, ...] = ()
    branch_id: int | None = None
    exempt: bool | None = None
    order: str = "owed"  # "owed" (largest first) or "since" (longest first)


def queue(user, filters: QueueFilters):
    """Subscribers not active (warned … terminated) that ``user`` may see, as AccessState rows. Closed accounts
    are left out: closing releases the money states (``actions.release_closed``), and an operator's block or
    termination kept for a reopening is nothing to chase on a closed account."""
    states = [s for s in filters.states if s in QUEUE_STATES] or [s.value for s in QUEUE_STATES]
    rows = AccessState.objects.filter(state__in=states).exclude(subscriber__status=SubscriberStatus.CLOSED)
    qs = scope_to_branches(rows, user, field="subscriber__branch")
    if filters.branch_id:
        qs = qs.filter(subscriber__branch_id=filters.branch_id)
    if filters.exempt is not None:
        qs = qs.filter(exempt=filters.exempt)
    order = ("-owed", "since", "subscriber_id") if filters.order != "since" else ("since", "subscriber_id")
    return qs.select_related("subscriber", "subscriber__branch").order_by(*order)


@dataclass(frozen=True)
class QueueTotals:
    by_state: dict[str, tuple[int, Decimal]]  # state → (subscribers, owed)
    count: int
    owed: Decimal


def queue_totals(qs) -> QueueTotals:
    """Per state: how many and how much they owe, in one grouped query over the filtered queue."""
    rows = qs.order_by().values("state").annotate(n=Count("pk"), owed_sum=Sum("owed"))
    by_state = {r["state"]: (r["n"], r["owed_sum"] or Decimal("0.00")) for r in rows}
    ordered = {s.value: by_state[s.value] for s in QUEUE_STATES if s.value in by_state}
    return QueueTotals(
        by_state=ordered,
        count=sum(n for n, _o in ordered.values()),
        owed=sum((o for _n, o in ordered.values()), Decimal("0.00")),
    )


def days_restricted(state: AccessState, now: dt.datetime | None = None) -> int | None:
    if state.restricted_since is None:
        return None
    return max(((now or clock.now()) - state.restricted_since).days, 0)
