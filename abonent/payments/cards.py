"""Sections other parts add to a payment's card (the fiscal receipt's, a gateway's details…), the way apps add
panels to the subscriber card: the payments console knows none of them.

``register_payment_section(fn)`` with ``fn(request, payment) -> str``: HTML (rendered by a template, so escaped
there), or ``""`` when there is nothing to show for this payment. The card shows them in registration order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.utils.safestring import SafeString, mark_safe

log = logging.getLogger(__name__)

PaymentSection = Callable[..., str]
_sections: list[PaymentSection] = []


def register_payment_section(fn: PaymentSection) -> PaymentSection:
    """Register ``fn`` (usable as a decorator); registering the same function twice keeps one."""
    if fn not in _sections:
        _sections.append(fn)
    return fn


def render_payment_sections(request, payment) -> list[SafeString]:
    html = []
    for fn in _sections:
        try:
            part = fn(request, payment)
        except Exception:
            # One part failing (a receipt service's row half-written) must not take the payment's card down.
            log.exception("payment card section %s failed for payment %s", getattr(fn, "__name__", fn), payment.pk)
            continue
        if part:
            html.append(mark_safe(part))  # noqa: S308 — the section's own template escaped it
    return html
