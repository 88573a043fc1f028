"""The demo's payments: a terminal agent on 127.0.0.1 that the banner shows how to call, and a few payments
through the real intake (the cash desk, a terminal, a bank transfer, one in suspense), so the journal, the
suspense queue and the cash report have something to show. Runs after billing's subscriptions; demo only."""

from __future__ import annotations

from decimal import Decimal

from abonent.core import clock
from abonent.core.seeding import SeedContext, seed_step

DEMO_AGENT = "demo-terminal"
DEMO_AGENT_LOGIN = "demo"
DEMO_AGENT_SECRET = "abonent-demo-agent-secret"  # noqa: S105 - the demo's, printed in its banner


@seed_step("payments", order=45)
def seed_payments(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    from abonent.staff.models import StaffUser
    from abonent.subscribers.models import Subscriber

    from .actions import do_receive_payment
    from .actions.agents import do_create_agent
    from .models import Agent, Payment
    from .models.agents import hash_secret

    admin = StaffUser.objects.filter(role="admin", is_active=True).order_by("pk").first()
    cashier = StaffUser.objects.filter(role="cashier", is_active=True).order_by("pk").first()
    agent = Agent.objects.filter(code=DEMO_AGENT).first()
    if agent is None and admin is not None:
        agent, _secret = do_create_agent(
            code=DEMO_AGENT,
            acting_user=admin,
            name="Демо-терминал",
            login=DEMO_AGENT_LOGIN,
            networks="127.0.0.1/32\n::1/128",
        )
        # A fixed secret the banner can print on every start (a real agent's is random and shown once).
        Agent.objects.filter(pk=agent.pk).update(secret_hash=hash_secret(DEMO_AGENT_SECRET))
    subscribers = list(Subscriber.objects.filter(status="active").order_by("pk")[:4])
    if not Payment.objects.exists() and len(subscribers) == 4:
        now = clock.now()
        do_receive_payment(
            channel="cash",
            external_id="demo-cash-1",
            amount=Decimal("650.00"),
            method="cash",
            subscriber=subscribers[0],
            acting_user=cashier,
            received_at=now,
        )
        do_receive_payment(
            channel=f"agent:{DEMO_AGENT}",
            external_id="demo-txn-1",
            amount=Decimal("500.00"),
            method="terminal",
            account_ref=subscribers[1].account_number,
            received_at=now,
        )
        do_receive_payment(
            channel="bank",
            external_id="demo-bank-1",
            amount=Decimal("1300.00"),
            method="bank",
            subscriber=subscribers[2],
            payer="ООО «Ромашка»",
            received_at=now,
        )
        do_receive_payment(
            channel=f"agent:{DEMO_AGENT}",
            external_id="demo-txn-2",
            amount=Decimal("300.00"),
            method="terminal",
            account_ref="000000",
            received_at=now,
        )
    if agent is not None and subscribers:
        ctx.facts["payment_agent"] = {
            "path": f"/pay/agents/{DEMO_AGENT}/",
            "login": DEMO_AGENT_LOGIN,
            "secret": DEMO_AGENT_SECRET,
            "account": subscribers[0].account_number,
        }
