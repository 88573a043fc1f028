"""Properties of the points over any sequence of earning, spending and expiry: never below zero, the liability
account equal to the points outstanding, the ledger balanced, and expiry taking no more than was left unused."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abonent.billing import ledger
from abonent.bonuses import actions, selectors
from abonent.bonuses.models import BonusEntry, EntryKind
from abonent.core import clock
from abonent.vouchers.testing import balance, balance_of

START = dt.date(2026, 1, 1)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["earn", "spend", "expire"]),
        st.integers(min_value=0, max_value=120),  # days after START
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500.00"), places=2),
    ),
    min_size=1,
    max_size=12,
)


class _Rollback(Exception):
    pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_points_stay_consistent_with_the_ledger(steps, rules, make_subscriber):
    rules(expiry_months=1)
    try:
        with transaction.atomic():
            subscriber = make_subscriber()
            spent = Decimal("0.00")
            for kind, offset, amount in sorted(steps, key=lambda s: s[1]):
                day = START + dt.timedelta(days=offset)
                with clock.travel_to(day):
                    if kind == "earn":
                        with transaction.atomic():
                            actions._lock(subscriber.pk)
                            actions._write(subscriber.pk, EntryKind.TENURE, amount, f"test:{uuid.uuid4()}", on=day,
                                           memo="")  # fmt: skip
                    elif kind == "spend":
                        before = selectors.spendable_of(subscriber.pk, day)
                        try:
                            actions.do_spend_points(subscriber, points=amount, key=str(uuid.uuid4()), acting_user=None)
                            spent += amount
                        except ValidationError as exc:
                            assert exc.error_dict["points"][0].code == "bonus_insufficient"
                            assert amount > before
                    else:
                        unused = selectors.unexpired_by(subscriber.pk, day - dt.timedelta(days=1))
                        before = selectors.balance_of(subscriber.pk)
                        actions.do_expire_points(day)
                        assert before - selectors.balance_of(subscriber.pk) == min(unused, before)
                points = selectors.balance_of(subscriber.pk)
                assert points >= 0
                assert balance_of("bonus") == points
            assert balance(subscriber) == spent
            earned = sum(BonusEntry.objects.filter(kind=EntryKind.TENURE).values_list("points", flat=True), Decimal(0))
            assert -balance_of("revenue:bonus") == earned - (earned - spent - selectors.balance_of(subscriber.pk))
            assert ledger.verify() == []
            raise _Rollback
    except _Rollback:
        pass
