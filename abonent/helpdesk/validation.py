"""What opening a ticket and writing to its thread take, checked and normalised before anything is written."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from . import rules
from .models import TicketCategory, TicketPriority


@dataclass
class TicketData:
    """What opening a ticket takes; the portal's form, its API and the console's form fill one."""

    category: str
    subject: str
    text: str
    address: str = ""
    priority: str = TicketPriority.NORMAL


# Characters that show nothing although ``str.isspace`` says they are not space: the Hangul fillers and the blank
# Braille pattern (the usual "invisible text" of messengers). Format characters (zero-width space and joiners, the
# BOM, direction marks, the soft hyphen) and controls are recognised by their Unicode category.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _shows_nothing(text: str) -> bool:
    """True when ``text`` has no character a reader would see (only spaces, zero-width and control characters)."""
    return all(
        ch.isspace() or ch in _BLANK_LOOKING or unicodedata.category(ch) in ("Cf", "Cc", "Cn", "Co", "Cs")
        for ch in text
    )


def _one_line(value) -> str:
    text = " ".join(str(value or "").split())
    return "" if _shows_nothing(text) else text


def clean_text(text, *, field: str = "text") -> str:
    """A message of a thread: something visible (not only spaces or zero-width characters), at most
    ``TEXT_MAX_LENGTH`` characters (after trimming)."""
    text = str(text or "").strip()
    if _shows_nothing(text):
        raise ValidationError({field: ValidationError(_("Write the text of the message."), code="required")})
    if "\x00" in text:
        # PostgreSQL's text cannot hold U+0000; no one types it.
        raise ValidationError(
            {field: ValidationError(_("The text has a character that cannot be saved."), code="text_invalid")}
        )
    if len(text) > rules.TEXT_MAX_LENGTH:
        raise ValidationError(
            {
                field: ValidationError(
                    _("The text is longer than %(limit)s characters.") % {"limit": rules.TEXT_MAX_LENGTH},
                    code="text_too_long",
                )
            }
        )
    return text


def clean_ticket(data: TicketData, *, by_subscriber: bool) -> TicketData:
    """``data`` checked and normalised; one ValidationError naming every bad field."""
    errors: dict[str, ValidationError] = {}
    if data.category not in TicketCategory.values:
        errors["category"] = ValidationError(_("Choose what the request is about."), code="category_invalid")
    subject = _one_line(data.subject)
    if not subject:
        errors["subject"] = ValidationError(_("Say in a few words what happened."), code="required")
    elif len(subject) > rules.SUBJECT_MAX_LENGTH or "\x00" in subject:
        errors["subject"] = ValidationError(
            _("The subject is longer than %(limit)s characters.") % {"limit": rules.SUBJECT_MAX_LENGTH},
            code="subject_too_long",
        )
    try:
        text = clean_text(data.text)
    except ValidationError as exc:
        errors.update({name: errs[0] for name, errs in exc.error_dict.items()})
        text = ""
    address = _one_line(data.address)
    if len(address) > rules.ADDRESS_MAX_LENGTH or "\x00" in address:
        errors["address"] = ValidationError(
            _("The address is longer than %(limit)s characters.") % {"limit": rules.ADDRESS_MAX_LENGTH},
            code="address_too_long",
        )
    elif data.category == TicketCategory.CONNECTION_REQUEST and not address:
        errors["address"] = ValidationError(_("Give the address to connect."), code="address_required")
    priority = data.priority or TicketPriority.NORMAL
    if by_subscriber:
        # A subscriber's every request is urgent to them; staff set the priority.
        priority = TicketPriority.NORMAL
    elif priority not in TicketPriority.values:
        errors["priority"] = ValidationError(_("Unknown priority."), code="priority_invalid")
    if errors:
        raise ValidationError(errors)
    return TicketData(category=data.category, subject=subject, text=text, address=address, priority=priority)
