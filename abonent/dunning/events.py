"""Reactions to other apps' events: a subscriber's access state is brought up to date right after every
change of its money or subscriptions commits (DESIGN.md invariant 5), not only by the periodic sweep.

A failure here (the database went away between the payment's commit and this) is logged and left to the next
sweep: the payment itself is committed, and the sweep reads the same facts.
"""

from __future__ import annotations

import logging

from abonent.core import events

from .models import TransitionCause

logger = logging.getLogger(__name__)

_CAUSES = {
    "billing.balance_changed": TransitionCause.BALANCE,
    "subscription.activated": TransitionCause.SUBSCRIPTION,
    "subscription.terminated": TransitionCause.SUBSCRIPTION,
    "subscription.frozen": TransitionCause.SUBSCRIPTION,
    "subscription.unfrozen": TransitionCause.SUBSCRIPTION,
    "subscription.plan_changed": TransitionCause.SUBSCRIPTION,
    "subscriber.reopened": TransitionCause.SUBSCRIPTION,
}


def _reevaluate(*, event: str, **payload) -> None:
    subscriber_id = payload.get("subscriber_id")
    if subscriber_id is None:
        return
    from .evaluation import evaluate

    if payload.get("credit") and _stays_active(subscriber_id, payload.get("probes") or {}):
        return
    try:
        evaluate([subscriber_id], cause=_CAUSES[event])
    except Exception:
        logger.exception(
            "access state of subscriber %s not re-evaluated after %s; the sweep will", subscriber_id, event
        )


def _stays_active(subscriber_id: int, probes: dict) -> bool:
    """Money coming in to a subscriber who is active (or never evaluated) leaves it active: one primary-key read
    instead of an evaluation on the payment's hot path, and not even that on the terminal fast path, whose one
    statement reads it (``PROBE``)."""
    from .models import AccessStateKind
    from .selectors import state_of

    if "dunning" in probes:
        return not probes["dunning"]
    return state_of(subscriber_id) == AccessStateKind.ACTIVE


# Whether the paying subscriber is anything but active: read by the terminal fast path with the payment.
PROBE = (
    "EXISTS (SELECT 1 FROM dunning_accessstate a WHERE a.subscriber_id = r.payment_subscriber_id"
    " AND a.state <> 'active')"
)


def install_probe() -> None:
    from abonent.payments.actions.fastpay import register_probe

    register_probe("dunning", PROBE)


for _name in _CAUSES:
    events.on(_name)(_reevaluate)


@events.on("subscriber.updated")
def _groups_changed(*, event: str, subscriber_id=None, fields=(), **payload) -> None:
    """Joining or leaving a group can change the subscriber's exemption and its rule (warn / suspend days): decided
    again now, not at the next sweep (a debtor leaving a hospital's exempt group is restricted at once)."""
    if subscriber_id is None or "groups" not in (fields or ()):
        return
    from .evaluation import evaluate

    try:
        evaluate([subscriber_id], cause=TransitionCause.GROUPS)
    except Exception:
        logger.exception("access state of subscriber %s not re-evaluated after a change of groups", subscriber_id)


@events.on("subscriber.closed")
def _closed(*, event: str, subscriber_id=None, **payload) -> None:
    if subscriber_id is None:
        return
    from .actions import release_closed

    try:
        release_closed(subscriber_id)
    except Exception:
        logger.exception("access state of closed subscriber %s not released", subscriber_id)
