"""The billing panels of the subscriber card: balance (5), subscriptions (6), ledger (7), and the billing part of
the card's header (plan and speed, balance, next charge and what to pay: ``card.render_header``).

Each panel is a template plus a context function, registered with the subscribers app's ``register_panel``.
The context functions also take ``bound`` (forms that failed, keyed as ``console_form`` keys them, shown with
their errors instead of empty ones) and ``notice`` (what the last action did), for the views that re-render a
panel after a post. The figures the header and the panels share are read once (``card.card_money``). The queries
do not depend on the subscriber's history: the ledger shows its newest lines (``Lines``); they grow only with the
number of current subscriptions (a price each for the next fee; for an active one the plans offered with their
prices, the freeze days used this year, and one list of turbo options for each whose plan sells turbos); the
turbos on take one query for all rows, and none when no turbo is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from abonent.catalog.forms import kbps_to_mbps
from abonent.catalog.models import ChargeMode
from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.extensions import HeaderItem, register_header_item
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Lines, Panel, register_panel

from . import card, offers, selectors
from .forms import (
    ActivateForm,
    AdjustmentForm,
    CreditLimitForm,
    FreezeForm,
    PlanChangeForm,
    PromisedPaymentForm,
    TerminateForm,
    TimePackageForm,
    TurboEndForm,
    TurboForm,
    UnfreezeForm,
    console_form,
)
from .models import (
    Freeze,
    Subscription,
    SubscriptionStatus,
    TurboActivation,
)
from .pricing import selectors as pricing_selectors
from .pricing.forms import EndPriceForm, PriceOverrideForm
from .pricing.models import PriceOverride
from .rating.estimate import UsageEstimate, usage_estimate
from .rating.time_summary import time_packages_offered, time_summary

# The card shows the newest entries and "show more" asks for more (``views.ledger_panel``): its cost grows with the
# lines it shows, not with the account's age (issue 17: three years of history within 200 ms).
LEDGER_LINES = 20


def _form(bound: dict | None, key: str, form_class, **kwargs):
    return (bound or {}).get(key) or console_form(form_class, key, **kwargs)


def balance_context(request, subscriber, bound: dict | None = None, notice: str = "") -> dict:
    money = card.card_money(subscriber)
    can_adjust = has_perm(request.user, Perm.BILLING_ADJUST)
    can_manage = has_perm(request.user, Perm.SUBSCRIPTION_MANAGE)
    # Whether a promised payment can be taken now, and if not why (the action's own check, ``offers``): the form is
    # offered only when it can, the reason shown when it cannot.
    offer = None
    if can_manage and money.promised is None:
        offer = offers.promised_offer(
            subscriber, policy=money.promised_policy, opened=None, balance=money.balance.balance
        )
    return {
        "balance": money.balance,
        "money": money,
        "promised": money.promised,
        "promised_offer": offer if offer is not None and offer.policy is not None else None,
        "can_adjust": can_adjust,
        "can_manage": can_manage,
        "adjust_form": _form(bound, "adjust", AdjustmentForm),
        "credit_limit_form": _form(
            bound, "credit-limit", CreditLimitForm, initial={"amount": money.balance.credit_limit}
        ),
        "promised_form": _form(bound, "promised", PromisedPaymentForm),
        "notice": notice,
    }


@dataclass
class SubscriptionRow:
    subscription: Subscription
    freeze: Freeze | None = None
    change_form: PlanChangeForm | None = None
    freeze_form: FreezeForm | None = None
    unfreeze_form: UnfreezeForm | None = None
    terminate_form: TerminateForm | None = None
    turbo: TurboActivation | None = None
    turbo_form: TurboForm | None = None
    turbo_end_form: TurboEndForm | None = None
    # Time plans: time used this period and packages left (rating.time_summary), and buying a package.
    time: object | None = None
    time_package_form: TimePackageForm | None = None
    # What it pays and why (billing/pricing): shown when any pricing rule exists; the individual price's forms.
    price: object | None = None
    price_form: object | None = None
    price_end_form: object | None = None
    own_price: object | None = None
    traffic: UsageEstimate | None = None  # the current period's traffic, for plans that count it
    live: card.LiveSubscription | None = None  # not terminated: its speed, monthly price and next charge
    freeze_terms: offers.FreezeTerms | None = None

    # The speeds the turbo on was bought with, in the Mbit/s the console shows.
    @property
    def turbo_download_mbps(self) -> Decimal | None:
        return kbps_to_mbps(self.turbo.download_kbps) if self.turbo else None

    @property
    def turbo_upload_mbps(self) -> Decimal | None:
        return kbps_to_mbps(self.turbo.upload_kbps) if self.turbo else None


def subscriptions_context(request, subscriber, bound: dict | None = None, notice: str = "") -> dict:
    money = card.card_money(subscriber)
    subscriptions = money.subscriptions
    # One query for every row's turbo, and none when no turbo is on.
    with_turbo = [s.pk for s in subscriptions if s.has_turbo]
    turbos = selectors.active_turbos(with_turbo) if with_turbo else {}
    can_manage = has_perm(request.user, Perm.SUBSCRIPTION_MANAGE)
    can_price = has_perm(request.user, Perm.PRICING_MANAGE)
    # One query when no pricing rule exists (the list price is all there is, and the card says nothing more).
    pricing = money.pricing
    rows = []
    for s in subscriptions:
        live = money.live_row(s.pk)
        row = SubscriptionRow(s, live.freeze if live else None, turbo=turbos.get(s.pk), live=live)
        if s.status != SubscriptionStatus.TERMINATED:
            if not pricing.empty:
                row.price = pricing_selectors.price_view(s, pricing=pricing)
                if row.price is not None and row.price.source == "subscription":
                    row.own_price = PriceOverride.objects.filter(pk=row.price.effective.source_id).first()
            if can_price:
                row.price_form = _form(bound, f"price-{s.pk}", PriceOverrideForm)
                if row.own_price is not None:
                    row.price_end_form = _form(bound, f"price-end-{s.pk}", EndPriceForm)
        # Only plans with an included volume count traffic: no queries for the others.
        if s.status != SubscriptionStatus.TERMINATED and s.plan.included_bytes is not None:
            row.traffic = usage_estimate(s)
        if can_manage and s.status == SubscriptionStatus.ACTIVE:
            choices = offers.plan_choices(s, selectors.plans_offered(s), pricing=pricing)
            row.change_form = _form(bound, f"change-{s.pk}", PlanChangeForm, choices=choices)
            if s.plan.freeze_policy_id:
                # The policy's terms, and why a freeze cannot be taken now (the action's check, one query).
                row.freeze_terms = offers.freeze_terms(s, available=money.balance.available)
                row.freeze_form = _form(bound, f"freeze-{s.pk}", FreezeForm)
            # A turbo form that failed stays with its error even when the turbo's state changed under it (one
            # turned on elsewhere, or run out while the card was open: the worker ends them every minute).
            if s.offers_turbo and (row.turbo is None or f"turbo-{s.pk}" in (bound or {})):
                row.turbo_form = _form(bound, f"turbo-{s.pk}", TurboForm, offered=selectors.turbos_offered(s))
        if s.plan.charge_mode == ChargeMode.TIME and s.status != SubscriptionStatus.TERMINATED:
            row.time = time_summary(s, history=0)
            offered = time_packages_offered(s)
            if can_manage and s.status == SubscriptionStatus.ACTIVE and offered.exists():
                row.time_package_form = _form(bound, f"time-package-{s.pk}", TimePackageForm, offered=offered)
        if can_manage and (row.turbo is not None or f"turbo-end-{s.pk}" in (bound or {})):
            row.turbo_end_form = _form(bound, f"turbo-end-{s.pk}", TurboEndForm)
        if can_manage and s.status == SubscriptionStatus.FROZEN:
            row.unfreeze_form = _form(bound, f"unfreeze-{s.pk}", UnfreezeForm)
        if can_manage and s.status != SubscriptionStatus.TERMINATED:
            row.terminate_form = _form(bound, f"terminate-{s.pk}", TerminateForm)
        rows.append(row)
    return {
        "rows": rows,
        "can_manage": can_manage,
        "can_price": can_price,
        "activate_form": _form(bound, "activate", ActivateForm),
        "notice": notice,
    }


def ledger_context(request, subscriber, bound: dict | None = None, notice: str = "", limit=None) -> dict:
    lines = Lines.asked(limit, default=LEDGER_LINES)
    return {
        "lines": selectors.ledger_lines(subscriber, limit=lines.shown),
        "limit": lines.shown,
        "more": lines.more,
        "notice": notice,
    }


PANELS = {
    panel.name: register_panel(panel)
    for panel in (
        Panel("balance", _("Balance"), "billing/panels/balance.html", 5, balance_context, Perm.BILLING_VIEW),
        Panel(
            "subscriptions",
            _("Subscriptions"),
            "billing/panels/subscriptions.html",
            6,
            subscriptions_context,
            Perm.BILLING_VIEW,
        ),
        Panel("ledger", _("Ledger"), "billing/panels/ledger.html", 7, ledger_context, Perm.BILLING_VIEW),
    )
}


register_header_item(
    HeaderItem("billing", 10, lambda request, subscriber: card.render_header(request, subscriber), Perm.BILLING_VIEW)
)


def render_billing_panel(
    request, subscriber, name: str, *, bound: dict | None = None, notice: str = "", out_of_band: bool = False
) -> SafeString:
    """One billing panel, as ``subscribers.panels.render_panel`` renders it on the card, with failed forms
    and a notice; ``out_of_band`` marks it for HTMX to swap in beside the panel the request targeted."""
    panel = PANELS[name]
    context = panel.context(request=request, subscriber=subscriber, bound=bound, notice=notice)
    html = render_to_string(panel.template, {"subscriber": subscriber, "panel": panel, **context}, request=request)
    if out_of_band:
        # The shared frame (subscribers/panels/_panel.html) has no hook for attributes on its <section>.
        html = html.replace("<section ", '<section hx-swap-oob="true" ', 1)
    return mark_safe(html)  # noqa: S308 — rendered by the template engine, escaped there


register_action_labels(
    {
        "billing.subscription_activated": _("Subscribed to a plan"),
        "billing.time_package_bought": _("Time package bought"),
        "billing.subscription_terminated": _("Subscription terminated"),
        "billing.plan_changed": _("Plan changed"),
        "billing.plan_change_scheduled": _("Plan change scheduled"),
        "billing.plan_change_cancelled": _("Scheduled plan change cancelled"),
        "billing.subscription_frozen": _("Subscription frozen"),
        "billing.subscription_unfrozen": _("Subscription unfrozen"),
        "billing.balance_adjusted": _("Balance adjusted"),
        "billing.one_off_charged": _("One-off service charged"),
        "billing.credit_limit_set": _("Credit limit changed"),
        "billing.payment_posted": _("Payment received"),
        "billing.promised_payment_taken": _("Promised payment taken"),
        "billing.promised_payment_repaid": _("Promised payment repaid"),
        "billing.promised_payment_expired": _("Promised payment expired"),
        "billing.transaction_reversed": _("Ledger entry reversed"),
        "billing.turbo_activated": _("Turbo turned on"),
        "billing.turbo_ended": _("Turbo ended early"),
        "billing.charge_reversed": _("Charge given back"),
        "billing.refund_posted": _("Refund posted"),
        "billing.promised_payment_reopened": _("Promised payment opened again"),
        "billing.price_override_set": _("Individual price set"),
        "billing.price_override_ended": _("Individual price ended"),
        "billing.price_override_withdrawn": _("Individual price withdrawn"),
        "billing.promotion_created": _("Promotion created"),
        "billing.promotion_ended": _("Promotion ended"),
        "billing.bundle_created": _("Bundle created"),
    },
    fields={
        "starts_on": _("starts on"),
        "from": _("from"),
        "to": _("to"),
        "from_date": _("from"),
        "until": _("until"),
        "credit": _("credited"),
        "charge": _("charged"),
        "fee": _("fee"),
        "amount": _("amount"),
        "channel": _("payment channel"),
        "external_id": _("payment id"),
        "due_on": _("due"),
        "resumes_on": _("fees resume on"),
        "ended_on": _("ended"),
        "pending_plan": _("scheduled plan"),
        "service": _("service"),
        "credit_limit": _("credit limit"),
        "reversal": _("reversal"),
        "turbo": _("turbo"),
    },
)
