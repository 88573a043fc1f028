"""What payments adds to the subscriber card, one module per panel: ``payments`` (the last payments and the cash
desk's "Take payment"; also the sections of a payment's own card) and ``autopay`` (saved methods, autopay settings
and attempts). Importing the package registers them (``apps.PaymentsConfig.ready``)."""

from .autopay import autopay_context, render_autopay_panel
from .payments import payments_context

__all__ = ["autopay_context", "payments_context", "render_autopay_panel"]
