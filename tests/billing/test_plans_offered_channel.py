"""Which plans a subscriber may pick themselves: the public ones their plan is switchable to, never a plan
withdrawn from sale, whichever caller speaks for the subscriber."""

from __future__ import annotations

import pytest

from abonent.billing import actions as billing
from abonent.billing.selectors import plans_offered

pytestmark = pytest.mark.django_db


def test_the_portal_channel_offers_only_public_switchable_plans(make_plan, make_subscriber, admin):
    current = make_plan("home", "650.00", is_public=True)
    public = make_plan("gamer", "900.00", is_public=True)
    withdrawn = make_plan("old", "300.00", is_public=False)
    elsewhere = make_plan("fast", "1200.00", is_public=True)  # public, but not switchable from "home"
    current.switchable_to.set([public, withdrawn])
    subscription = billing.do_activate_subscription(make_subscriber(), plan=current, acting_user=admin)

    assert list(plans_offered(subscription, channel="portal")) == [public]
    assert set(plans_offered(subscription, channel="staff")) == {public, withdrawn, elsewhere}
