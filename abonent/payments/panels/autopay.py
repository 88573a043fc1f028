"""The payments panels of the subscriber card: autopay (saved methods with their consent, the settings, the
tries). Registered with the subscribers app's ``register_panel``, as billing's are; readable with BILLING_VIEW,
changed with SUBSCRIPTION_MANAGE.

The context takes ``bound`` (forms that failed, keyed as ``console_form`` keys them) and ``notice`` (what the last
action did), for the views that re-render the panel after a post. Its queries do not grow with the history.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from abonent.billing.forms import console_form
from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from ..forms import AutopayForm, UnlinkForm
from ..models import AutopayAmount, AutopayMode
from ..selectors import autopay as selectors

NOTICES = 10


def _form(bound: dict | None, key: str, form_class, **kwargs):
    return (bound or {}).get(key) or console_form(form_class, key, **kwargs)


def autopay_context(request, subscriber, bound: dict | None = None, notice: str = "") -> dict:
    can_manage = has_perm(request.user, Perm.SUBSCRIPTION_MANAGE)
    methods = list(selectors.methods_of(subscriber))
    plan = selectors.autopay_of(subscriber)
    active = [m for m in methods if m.active]
    context = {
        "methods": methods,
        "plan": plan,
        "attempts": selectors.attempts_of(subscriber),
        "notices": selectors.notices_of(subscriber, limit=NOTICES),
        "can_manage": can_manage,
        "notice": notice,
        "autopay_form": None,
        "off_form": None,
        "unlink_forms": {},
    }
    if can_manage and active:
        initial = {"mode": AutopayMode.DAY_OF_MONTH, "amount_mode": AutopayAmount.COVER, "debit_day": 1}
        if plan is not None:
            initial = {
                "method": plan.method_id if plan.method.active else None,
                "mode": plan.mode,
                "debit_day": plan.debit_day,
                "amount_mode": plan.amount_mode,
                "fixed_amount": plan.fixed_amount,
                "min_amount": plan.min_amount,
                "max_amount": plan.max_amount,
            }
        methods_qs = selectors.methods_of(subscriber, active_only=True)
        context["autopay_form"] = _form(bound, "autopay", AutopayForm, methods=methods_qs, initial=initial)
    if can_manage and plan is not None and plan.enabled:
        context["off_form"] = _form(bound, "autopay-off", UnlinkForm)
    if can_manage:
        context["unlink_forms"] = {m.pk: _form(bound, f"unlink-{m.pk}", UnlinkForm) for m in active}
    context["method_rows"] = [(m, context["unlink_forms"].get(m.pk)) for m in methods]
    return context


PANEL = register_panel(
    Panel("autopay", _("Autopay"), "payments/panels/autopay.html", 9, autopay_context, Perm.BILLING_VIEW)
)


def render_autopay_panel(request, subscriber, *, bound: dict | None = None, notice: str = "") -> SafeString:
    context = PANEL.context(request=request, subscriber=subscriber, bound=bound, notice=notice)
    html = render_to_string(PANEL.template, {"subscriber": subscriber, "panel": PANEL, **context}, request=request)
    return mark_safe(html)  # noqa: S308 — rendered by the template engine, escaped there


register_action_labels(
    {
        "payments.method_linked": _("Payment method saved"),
        "payments.method_unlinked": _("Payment method unlinked"),
        "payments.autopay_enabled": _("Autopay turned on"),
        "payments.autopay_disabled": _("Autopay turned off"),
        "payments.autopay_sent": _("Autopay debit sent"),
        "payments.autopay_succeeded": _("Autopay debit succeeded"),
        "payments.autopay_declined": _("Autopay debit declined"),
        "payments.autopay_failed": _("Autopay debit failed"),
        "payments.autopay_unknown": _("Autopay debit unanswered"),
    },
    fields={
        "method": _("payment method"),
        "mode": _("when"),
        "debit_day": _("day of the month"),
        "amount_mode": _("amount"),
        "fixed_amount": _("fixed amount"),
        "max_amount": _("at most"),
        "due_on": _("due"),
        "try": _("try"),
        "code": _("decline reason"),
        "soft": _("will retry"),
    },
)
