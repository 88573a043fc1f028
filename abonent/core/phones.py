"""Phone numbers for display. Any app shows phones (subscribers' contacts, staff, call events), so formatting
lives here; checking what a person typed stays with the app that takes it (``subscribers.validators``)."""

from __future__ import annotations

import phonenumbers


def format_phone(e164: str) -> str:
    """For display: ``+79161234567`` → ``+7 916 123-45-67``; a value that is no phone number comes back as is."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
