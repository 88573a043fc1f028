"""Reading access states: what RADIUS, the CoA queue, the console and the API ask."""

from __future__ import annotations

from collections.abc import Iterable

from .models import DENIED_STATES, REDIRECTED_STATES, AccessState, AccessStateKind


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
