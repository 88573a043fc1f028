"""The placeholders each event's templates may use, and rendering ``{name}`` text with them.

Templates use ``{placeholder}`` (``{{`` and ``}}`` for literal braces). An unknown name, a format spec or an
attribute access (``{name.__class__}``, ``{balance:>10}``) is refused when a template is saved
(``check_template``): a template is data staff type in, never code.
"""

from __future__ import annotations

import string

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import Event

# Every event knows who it is for; these come from the subscriber and the installation.
COMMON = ("name", "account", "pay_link", "provider")
PER_EVENT: dict[str, tuple[str, ...]] = {
    Event.RUNOUT_SOON: ("balance", "days_left", "runout_on", "amount_due"),
    Event.RESTRICTED: ("balance", "amount_due"),
    Event.SUSPENDED: ("balance", "amount_due"),
    Event.RESTORED: ("balance",),
    Event.PAYMENT_RECEIVED: ("amount", "balance", "paid_at", "receipt_link"),
    Event.AUTOPAY_REMINDER: ("amount", "due_on", "method"),
    Event.AUTOPAY_SUCCEEDED: ("amount", "method"),
    Event.AUTOPAY_DECLINED: ("amount", "method", "reason"),
    Event.AUTOPAY_RETRY_SCHEDULED: ("amount", "method", "reason", "next_try_on"),
    Event.AUTOPAY_STOPPED: ("method", "reason"),
    Event.METHOD_UNLINKED: ("method",),
    Event.PROMISED_EXPIRING: ("amount", "expires_on", "amount_due"),
    Event.FREEZE_ENDING: ("ends_on",),
    Event.PLAN_CHANGED: ("plan", "monthly_fee", "effective_on"),
    Event.DOCUMENT_ISSUED: ("document", "document_link"),
    Event.TICKET_UPDATED: ("ticket", "ticket_status", "ticket_link"),
    Event.LOGIN_CODE: ("code", "minutes"),
    Event.CONTACT_CODE: ("code", "minutes"),
    Event.BULK: (),
}


def placeholders(event: str) -> tuple[str, ...]:
    return COMMON + PER_EVENT.get(event, ())


def names_in(text: str) -> list[str]:
    """The placeholder names ``text`` uses; ``ValidationError`` if it is not a plain ``{name}`` template."""
    names = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValidationError(
            _("Unbalanced braces: to show a brace itself, write it twice."), code="template_syntax"
        ) from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise ValidationError(
                _("“{%(field)s}” is not a placeholder: use a plain name in braces, such as {name}.") % {"field": field},
                code="template_syntax",
            )
        names.append(field)
    return names


def check_template(event: str, *texts: str) -> None:
    """Refuse a template that uses a placeholder its event does not have."""
    allowed = set(placeholders(event))
    unknown = sorted({name for text in texts for name in names_in(text)} - allowed)
    if unknown:
        raise ValidationError(
            _("Unknown placeholders: %(unknown)s. This message may use: %(allowed)s.")
            % {
                "unknown": ", ".join(f"{{{n}}}" for n in unknown),
                "allowed": ", ".join(f"{{{n}}}" for n in placeholders(event)),
            },
            code="unknown_placeholder",
        )


class _Values(dict):
    # A placeholder without a value renders empty rather than failing a message already decided on.
    def __missing__(self, key):
        return ""


def render(text: str, values: dict) -> str:
    return string.Formatter().vformat(text, (), _Values({k: "" if v is None else str(v) for k, v in values.items()}))
