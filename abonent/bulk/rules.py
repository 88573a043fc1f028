"""Who of a selection a bulk action touches and who it skips, and why: one CASE per subscriber in SQL, the same for
the preview's counts and for the run (which asks again, per chunk, just before it acts)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, CharField, Exists, OuterRef, Q, QuerySet, Value, When

from abonent.billing.models import Subscription, SubscriptionStatus
from abonent.catalog.models import Plan
from abonent.core import clock
from abonent.notifications.selectors import reachable
from abonent.staff.permissions import Perm
from abonent.subscribers.models import Subscriber, SubscriberGroup, SubscriberStatus

from .models import BulkKind, SkipReason

# What each action needs besides ``subscriber.bulk``.
KIND_PERMISSIONS = {
    BulkKind.GROUP_ADD: Perm.SUBSCRIBER_EDIT,
    BulkKind.GROUP_REMOVE: Perm.SUBSCRIBER_EDIT,
    BulkKind.MESSAGE: Perm.NOTIFICATION_BULK,
    BulkKind.PLAN_CHANGE: Perm.SUBSCRIPTION_MANAGE,
}


@dataclass(frozen=True)
class Params:
    """What one bulk action needs; stored as JSON on ``BulkAction.params``."""

    kind: str
    group_id: int | None = None
    plan_id: int | None = None
    channel: str = ""
    subject: str = ""
    body: str = ""
    marketing: bool = False
    per_minute: int = 600
    # A plan change: replace a different change already scheduled (otherwise those subscriptions are skipped).
    replace_scheduled: bool = False

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "kind"}

    @classmethod
    def from_json(cls, kind: str, data: dict) -> Params:
        return cls(kind=kind, **{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def group(self) -> SubscriberGroup | None:
        return SubscriberGroup.objects.filter(pk=self.group_id).first() if self.group_id else None

    @property
    def plan(self) -> Plan | None:
        return Plan.objects.select_related("service").filter(pk=self.plan_id).first() if self.plan_id else None


def live_subscription(plan: Plan) -> QuerySet[Subscription]:
    """The subscriber's subscription (not terminated) to ``plan``'s service: at most one (the schema's rule)."""
    return Subscription.objects.filter(subscriber=OuterRef("pk"), service_id=plan.service_id).exclude(
        status=SubscriptionStatus.TERMINATED
    )


def other_scheduled(plan: Plan) -> QuerySet[Subscription]:
    """The live subscription when a change to another plan than ``plan`` is scheduled on it."""
    return live_subscription(plan).filter(pending_plan__isnull=False).exclude(pending_plan_id=plan.pk)


def _plan_rules(plan: Plan, *, replace_scheduled: bool) -> list[When]:
    live = live_subscription(plan)
    rules = [
        When(~Exists(live), then=Value(SkipReason.NO_SUBSCRIPTION)),
        When(Exists(live.filter(status=SubscriptionStatus.FROZEN)), then=Value(SkipReason.NOT_ACTIVE)),
        When(Exists(live.filter(plan_id=plan.pk)), then=Value(SkipReason.SAME_PLAN)),
        When(Exists(live.filter(pending_plan_id=plan.pk)), then=Value(SkipReason.ALREADY_SCHEDULED)),
        # Periods a missed run left unbilled: ``do_change_plan`` would charge them on the spot, and the bulk change
        # promises nothing is charged now. The next run bills them; the change can be made after it.
        When(
            Exists(live.filter(status=SubscriptionStatus.ACTIVE, next_charge_on__lte=clock.today())),
            then=Value(SkipReason.BILLING_PENDING),
        ),
    ]
    if not replace_scheduled:
        rules.append(When(Exists(other_scheduled(plan)), then=Value(SkipReason.OTHER_SCHEDULED)))
    # The plans a staff member may choose (billing.selectors.plans_offered): any public, not archived plan of the
    # service, or one the current plan names as switchable to.
    if plan.is_archived:
        rules.append(When(pk__isnull=False, then=Value(SkipReason.NOT_OFFERED)))
    elif not plan.is_public:
        rules.append(When(~Exists(live.filter(plan__switchable_to=plan)), then=Value(SkipReason.NOT_OFFERED)))
    return rules


def _rules(params: Params) -> list[When]:
    rules = [When(status=SubscriberStatus.CLOSED, then=Value(SkipReason.CLOSED))]
    through = Subscriber.groups.through
    member = Exists(through.objects.filter(subscriber_id=OuterRef("pk"), subscribergroup_id=params.group_id))
    if params.kind == BulkKind.GROUP_ADD:
        rules.append(When(member, then=Value(SkipReason.ALREADY_MEMBER)))
    elif params.kind == BulkKind.GROUP_REMOVE:
        rules.append(When(~member, then=Value(SkipReason.NOT_MEMBER)))
    elif params.kind == BulkKind.PLAN_CHANGE:
        rules += _plan_rules(params.plan, replace_scheduled=params.replace_scheduled)
    elif params.kind == BulkKind.MESSAGE:
        in_reach = reachable(Subscriber.objects.all(), params.channel).values("pk")
        rules.append(When(~Q(pk__in=in_reach), then=Value(SkipReason.NO_ADDRESS)))
        if params.marketing:
            rules.append(When(consent_marketing=False, then=Value(SkipReason.NO_CONSENT)))
    return rules


def classified(subscribers: QuerySet[Subscriber], params: Params) -> QuerySet[Subscriber]:
    """``subscribers`` with ``skip``: the ``SkipReason`` that leaves each alone, or "" for those the action touches."""
    return subscribers.annotate(skip=Case(*_rules(params), default=Value(""), output_field=CharField()))


@dataclass
class Preview:
    """How many of the selection the action touches, and how many it skips by reason, counted now; ``replaces``:
    of those touched, how many have another plan change scheduled that this one replaces."""

    total: int = 0
    touched: int = 0
    skipped: list[tuple[str, str, int]] = field(default_factory=list)  # (reason, label, count), most first
    replaces: int = 0

    @property
    def skipped_total(self) -> int:
        return sum(n for _r, _l, n in self.skipped)

    def as_json(self) -> dict:
        return {
            "total": self.total,
            "touched": self.touched,
            "skipped": {r: n for r, _l, n in self.skipped},
            "replaces": self.replaces,
        }

    @classmethod
    def from_json(cls, data: dict) -> Preview:
        skipped = sorted(
            ((r, SkipReason(r).label, n) for r, n in data.get("skipped", {}).items()), key=lambda row: (-row[2], row[0])
        )
        return cls(data.get("total", 0), data.get("touched", 0), skipped, data.get("replaces", 0))


def resolved(subscribers: QuerySet[Subscriber], params: Params, *, limit: int) -> tuple[list[int], Preview]:
    """The ids of ``subscribers`` (at most ``limit`` + 1, in id order) and the preview of them: one statement, so
    the counts are of exactly the set the ids name."""
    qs = classified(subscribers.order_by("pk"), params)
    fields = ["pk", "skip"]
    if params.kind == BulkKind.PLAN_CHANGE and params.replace_scheduled:
        qs = qs.annotate(replaces=Exists(other_scheduled(params.plan)))
        fields.append("replaces")
    ids: list[int] = []
    counts: dict[str, int] = {}
    replaces = 0
    for row in qs.values_list(*fields)[: limit + 1]:
        ids.append(row[0])
        counts[row[1]] = counts.get(row[1], 0) + 1
        replaces += bool(row[1] == "" and len(row) > 2 and row[2])
    touched = counts.pop("", 0)
    skipped = sorted(((r, SkipReason(r).label, n) for r, n in counts.items()), key=lambda row: (-row[2], row[0]))
    return ids, Preview(total=len(ids), touched=touched, skipped=skipped, replaces=replaces)
