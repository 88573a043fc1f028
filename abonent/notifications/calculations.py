"""Pure calculations of this app: how many SMS parts a text takes, masking an address (and a login code) for the
console, and when a paced stream of messages is due around the quiet hours."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# GSM 03.38: the basic 7-bit alphabet, and the extension table whose characters take two septets (an escape first).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    characters: int  # as the SMS centre counts them: septets in GSM-7, UTF-16 code units in UCS-2
    parts: int
    unicode: bool  # UCS-2 (Cyrillic): 70 a part, 67 in a multipart message; GSM-7: 160 / 153
    per_part: int


def sms_length(text: str) -> SmsLength:
    """How the text is split into SMS parts (3GPP TS 23.040: a multipart message loses room to its header)."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        single, multi, unicode = 160, 153, False
    else:
        # Characters outside the Basic Multilingual Plane (emoji) take two UTF-16 units.
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
        single, multi, unicode = 70, 67, True
    if units == 0:
        parts = 0
    elif units <= single:
        parts = 1
    else:
        parts = -(-units // multi)
    return SmsLength(units, parts, unicode, single if parts <= 1 else multi)


def mask_address(channel: str, address: str) -> str:
    """Enough of an address to tell which one it was, not enough to copy: +7916•••4567, iv•••@mail.ru, •••5678."""
    if not address:
        return ""
    if channel == "email" and "@" in address:
        local, _sep, domain = address.rpartition("@")
        return f"{local[:2]}•••@{domain}"
    if channel == "sms" and len(address) > 8:
        return f"{address[:5]}•••{address[-4:]}"
    return f"•••{address[-4:]}"


# A portal login code signs in as the subscriber: the console and the staff API show its message with the code
# hidden (the subscriber's own phone or mailbox has it; nobody at the provider needs to read it off a screen).
SECRET_CODE_EVENTS = frozenset({"login_code", "contact_code"})
_CODE = re.compile(r"(?<!\d)\d{4,8}(?!\d)")
HIDDEN_CODE = "••••••"


def shown_text(event: str, text: str) -> str:
    """``text`` (a message's subject or body) as staff see it: a login code's digits replaced by dots. Runs of 4
    to 8 digits: the code, whatever a template does around it; an account number (9 digits) stays readable."""
    if event in SECRET_CODE_EVENTS and text:
        return _CODE.sub(HIDDEN_CODE, text)
    return text


def _quiet_window(moment: dt.datetime, zone: ZoneInfo, quiet: tuple[dt.time, dt.time]):
    """``(start, end)`` in UTC of the quiet window ``moment`` falls in, or ``None``; ``quiet`` may cross midnight."""
    start, end = quiet
    local = moment.astimezone(zone)
    clock_time = local.time()
    day = local.date()
    if start < end:
        if not start <= clock_time < end:
            return None
        opened, closes = day, day
    elif clock_time >= start:
        opened, closes = day, day + dt.timedelta(days=1)
    elif clock_time < end:
        opened, closes = day - dt.timedelta(days=1), day
    else:
        return None
    return (
        dt.datetime.combine(opened, start, tzinfo=zone).astimezone(dt.UTC),
        dt.datetime.combine(closes, end, tzinfo=zone).astimezone(dt.UTC),
    )


def _next_quiet_start(moment: dt.datetime, zone: ZoneInfo, start: dt.time) -> dt.datetime:
    local = moment.astimezone(zone)
    candidate = dt.datetime.combine(local.date(), start, tzinfo=zone)
    if candidate.astimezone(dt.UTC) <= moment:
        candidate = dt.datetime.combine(local.date() + dt.timedelta(days=1), start, tzinfo=zone)
    return candidate.astimezone(dt.UTC)


def pace_past_quiet_hours(
    start: dt.datetime, offset: dt.timedelta, zone: ZoneInfo, quiet: tuple[dt.time, dt.time] | None
) -> dt.datetime:
    """When the message ``offset`` after the start of a paced stream (a bulk message's throttle) is due if the
    stream pauses in the quiet hours: ``offset`` is counted in waking hours only. A stream started at 22:00 with
    quiet hours 21:00-09:00 sends its first at 09:00 the next day and the rest at the same pace after it, instead
    of everything at 09:00; one started at 20:00 goes on at 09:00 from where it stopped at 21:00."""
    if quiet is None or quiet[0] == quiet[1]:
        return start + offset
    moment, left = start, max(offset, dt.timedelta(0))
    for _day in range(3660):  # a stream paced over ten years is not one anybody set up
        window = _quiet_window(moment, zone, quiet)
        if window is not None:
            moment = window[1]
        pause = _next_quiet_start(moment, zone, quiet[0])
        if moment + left < pause:
            return moment + left
        left -= pause - moment
        moment = pause
    return moment + left
