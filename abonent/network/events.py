"""Reactions to other apps' events.

A change that can alter a subscriber's authorisation goes into the policy-change feed that the RADIUS
processes follow. A plan change and a turbo turned on or off are pushed to the NAS as a CoA with the new
speed (no reconnect); a freeze, a termination or a closed contract disconnects the subscriber's open
sessions.
"""

from __future__ import annotations

from abonent.core import events

from . import actions
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
