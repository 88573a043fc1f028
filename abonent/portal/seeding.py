"""The demo's portal passwords: the featured subscriber (Иванов, +7 916 123-45-67) and the first other demo
subscriber can log in to ``/my/`` with their account number and ``DEMO_PASSWORD``; ``abonent demo`` prints them."""

from __future__ import annotations

from django.contrib.auth.hashers import check_password

from abonent.core.seeding import SeedContext, refuse_demo_in_production, seed_step
from abonent.subscribers.models import ContactPoint, Subscriber

from .actions import do_set_password
from .models import PortalAccount

DEMO_PASSWORD = "portal-demo-2026"  # noqa: S105 - the demo's published password, printed by ``abonent demo``


def demo_subscribers(ctx: SeedContext) -> list[Subscriber]:
    """The featured subscriber (when seeded) and the demo's first other subscriber."""
    from abonent.subscribers.seeding import FEATURED_PHONE

    featured = (
        ContactPoint.objects.filter(value=ctx.facts.get("featured_phone") or FEATURED_PHONE)
        .order_by("subscriber_id")
        .values_list("subscriber_id", flat=True)
        .first()
    )
    chosen = list(Subscriber.objects.filter(pk=featured)) if featured else []
    first = Subscriber.objects.exclude(pk__in=[s.pk for s in chosen]).order_by("pk").first()
    return [*chosen, *([first] if first else [])]


@seed_step("portal", order=60)
def seed_portal(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    refuse_demo_in_production()  # run_seed refuses already; this step alone must not either
    accounts = []
    for subscriber in demo_subscribers(ctx):
        account = PortalAccount.objects.filter(subscriber_id=subscriber.pk).first()
        # Set again when a visitor changed it on the security page: the password the banner prints must work.
        if account is None or not check_password(DEMO_PASSWORD, account.password):
            do_set_password(subscriber, DEMO_PASSWORD, reason="demo")
        accounts.append((subscriber.account_number, DEMO_PASSWORD, subscriber.display_name))
    ctx.facts["portal_logins"] = accounts
