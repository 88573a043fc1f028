"""Reactions to other apps' events.

A change that can alter a subscriber's authorisation goes into the policy-change feed that the RADIUS
processes follow. A plan change is pushed to the NAS as a CoA with the new speed (no reconnect); a freeze,
a termination or a closed contract disconnects the subscriber's open sessions.
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
)
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
    if event == "subscription.plan_changed":
        actions.queue_policy_coa(subscriber_id, reason=CoaReason.PLAN_CHANGE)
    elif event in _DISCONNECT_EVENTS:
        actions.queue_disconnect(subscriber_id, reason=_DISCONNECT_EVENTS[event])


for _name in _POLICY_EVENTS:
    events.on(_name)(_policy_changed)
