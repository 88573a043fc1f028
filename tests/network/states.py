"""Setting dunning's access state as its engine would, for the network tests.

The engine that moves the states from the money lives in the dunning app; these tests drive the money as
before (a debt, a payment) and then set the state that money gives, so the network side is tested on the
state alone and still agrees with the balance once the engine runs too."""

from __future__ import annotations

from abonent.billing import actions as billing
from abonent.core import clock
from abonent.dunning.models import AccessState, AccessStateKind


def set_access_state(subscriber, state: str) -> AccessState:
    now = clock.now()
    restricted = state in (AccessStateKind.RESTRICTED, AccessStateKind.SUSPENDED)
    row, _created = AccessState.objects.update_or_create(
        subscriber_id=getattr(subscriber, "pk", subscriber),
        defaults={"state": state, "since": now, "evaluated_at": now, "restricted_since": now if restricted else None},
    )
    return row


def into_debt(subscriber, admin, *, state: str = AccessStateKind.RESTRICTED) -> None:
    """5,000 ₽ of debt: restricted (the payment-page redirect), or ``state`` (suspended after the grace days)."""
    billing.do_adjust_balance(subscriber, amount="-5000.00", reason="debt", acting_user=admin)
    set_access_state(subscriber, state)


def pays(subscriber, admin, *, external_id: str = "c-2") -> None:
    """Pays the debt off: access back."""
    billing.do_post_payment(subscriber, amount="6000.00", channel="cash", external_id=external_id, acting_user=admin)
    set_access_state(subscriber, AccessStateKind.ACTIVE)
