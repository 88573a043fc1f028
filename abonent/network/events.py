"""Reactions to other apps' events.

A change that can alter a subscriber's authorisation goes into the policy-change feed that the RADIUS
processes follow. A plan change and a turbo turned on or off are pushed to the NAS as a CoA with the new
speed (no reconnect); a freeze, a termination or a closed contract disconnects the subscriber's open
sessions.

A change of access state (dunning's ``dunning.states_changed``, after its commit) is pushed to the NAS at once:
the payment-page redirect on or off, a Disconnect for a subscriber denied access (``access.sync_access_states``
for those subscribers; the worker's run every minute covers whatever this misses).

A plan change that a billing run puts in force (a downgrade scheduled for the next period) arrives instead as
billing's ``plans_switched`` signal, inside the run's transaction: the feed entry and the CoA commit with the
switch itself.
"""

from __future__ import annotations

from django.dispatch import receiver

from abonent.billing.engine import PlanSwitch, fees_charged, plans_switched
from abonent.core import events
from abonent.core.deadlines import is_deadline

from . import access, actions
from .models import CoaReason

_POLICY_EVENTS = (
    "subscriber.updated",
    "subscriber.closed",
    "subscriber.reopened",
    "subscription.activated",
    "subscription.terminated",
    "subscription.frozen",
    "subscription.unfrozen",
    "subscription.plan_changed",
    "subscription.turbo_started",
    "subscription.turbo_ended",
    "billing.time_package_bought",
)
# Changes pushed to the open sessions by CoA with the speed now in force (no reconnect).
_COA_EVENTS = {
    "subscription.plan_changed": CoaReason.PLAN_CHANGE,
    "subscription.turbo_started": CoaReason.TURBO_ON,
    "subscription.turbo_ended": CoaReason.TURBO_OFF,
}
_DISCONNECT_EVENTS = {
    "subscription.frozen": CoaReason.SUSPEND,
    "subscription.terminated": CoaReason.SUSPEND,
    "subscriber.closed": CoaReason.SUSPEND,
}


def _policy_changed(*, event: str, **payload) -> None:
    subscriber_id = payload.get("subscriber_id")
    if subscriber_id is None:
        return
    actions.note_policy_change([subscriber_id])
    if event in _COA_EVENTS:
        actions.queue_policy_coa(subscriber_id, reason=_COA_EVENTS[event])
    elif event in _DISCONNECT_EVENTS:
        actions.queue_disconnect(subscriber_id, reason=_DISCONNECT_EVENTS[event])


for _name in _POLICY_EVENTS:
    events.on(_name)(_policy_changed)


# Seconds the event's own sync waits for one already running (the periodic one) before it hands the work to the
# worker: it runs in the process that changed the state, a payment's request among them.
STATES_CHANGED_LOCK_WAIT_S = 3.0


@events.on("dunning.states_changed")
def _access_states_changed(*, event: str, subscriber_ids=(), **payload) -> None:
    ids = sorted({int(sid) for sid in subscriber_ids or ()})
    if not ids:
        return
    try:
        access.sync_access_states(ids, lock_wait=STATES_CHANGED_LOCK_WAIT_S)
    except Exception as exc:
        if not is_deadline(exc):
            raise
        # Another sync holds the turn (a long periodic run): the worker does these subscribers next, rather
        # than the caller waiting on it.
        from .tasks import sync_access_states

        sync_access_states.enqueue(subscriber_ids=ids)


@receiver(plans_switched, dispatch_uid="network.plans_switched")
def _plans_switched(sender, *, switched: list[PlanSwitch], **kwargs) -> None:
    """The RADIUS side of a plan change a billing run applied, in the run's chunk transaction: the feed entry
    (``abonent radius`` re-reads these subscribers) and a CoA with the new speed for the sessions online, as
    ``subscription.plan_changed`` does for a change made now. A CoA rendered per subscriber online (a run
    switches few), then one insert into the feed for the chunk."""
    subscriber_ids = sorted({switch.subscriber_id for switch in switched})
    actions.queue_for_online(
        subscriber_ids, lambda sid: actions.queue_policy_coa(sid, reason=CoaReason.PLAN_CHANGE), "billing run"
    )
    # The feed entry last, just before the chunk commits: the RADIUS processes read the feed by id with an
    # overlap (FEED_OVERLAP), and an id taken long before its commit could be passed over.
    actions.note_policy_change(subscriber_ids)


@events.on("billing.balance_changed")
def _time_balance_changed(*, event: str, subscriber_id=None, **payload) -> None:
    """A subscriber on a time plan: the money left is its Session-Timeout, so the RADIUS processes reload it. Others'
    balances do not change their policy (dunning's access states reach the NAS on their own)."""
    if subscriber_id is None:
        return
    if _on_time_plans([subscriber_id]):
        actions.note_policy_change([subscriber_id])


@receiver(fees_charged, dispatch_uid="network.fees_charged")
def _fees_charged(sender, *, subscriber_ids: list[int], **kwargs) -> None:
    """A billing run's fees spend the money a subscriber on a time plan also has for time online: its RADIUS
    Session-Timeout is reloaded. Inside the chunk's transaction; one read of those on time plans (an index on the
    few time subscriptions) and one insert into the feed, only when there are any."""
    actions.note_policy_change(_on_time_plans(subscriber_ids))


FEW_SUBSCRIBERS = 100


def _on_time_plans(subscriber_ids) -> list[int]:
    """Those of ``subscriber_ids`` with a live subscription on a time plan. Time subscriptions are the few (hotspot
    accounts): they are read and intersected here, instead of looking up every subscriber a billing run's chunk
    charged (10,000 index probes a chunk, a third of the run's time when measured)."""
    from abonent.billing.models import Subscription, SubscriptionStatus
    from abonent.catalog.models import ChargeMode, Plan

    live = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE)
    if len(subscriber_ids) <= FEW_SUBSCRIBERS:  # a payment, a purchase: a lookup of those few is cheapest
        wanted = live.filter(subscriber_id__in=list(subscriber_ids), plan__charge_mode=ChargeMode.TIME)
        return sorted(set(wanted.values_list("subscriber_id", flat=True)))
    time_plans = list(Plan.objects.filter(charge_mode=ChargeMode.TIME).values_list("id", flat=True))
    if not time_plans:
        return []
    on_time = set(live.filter(plan_id__in=time_plans).values_list("subscriber_id", flat=True))
    return sorted(on_time.intersection(subscriber_ids))
