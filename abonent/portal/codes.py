"""One-time codes: the first login and a forgotten password are one flow — prove the phone or e-mail on the
contract, then set a password.

A code is 6 digits from ``secrets``, sent through the notifications app (``Event.LOGIN_CODE``, one channel, at
once: no quiet hours). Only its HMAC (keyed by ``SECRET_KEY``, so a copy of the database alone cannot be searched
for the million codes) is kept. It works once, for ``ABONENT_PORTAL_CODE_SECONDS``, for at most ``MAX_TRIES`` wrong
tries; a newer code replaces it. A subscriber gets at most ``ABONENT_PORTAL_CODES_PER_HOUR`` codes an hour and one
per ``ABONENT_PORTAL_CODE_RESEND_SECONDS``.

Nothing here tells a stranger whether a login exists: asking for a code answers the same for every login, and a
check says more than "wrong code" (expired, used) only to whoever holds the right code.

The profile's new phone or e-mail is proven the same way (``CodePurpose.CONFIRM_CONTACT``): the code goes to the
new address (kept on the code's row), one live code per channel, within its own allowance (``issue_code``,
``check_contact_code``).
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.crypto import constant_time_compare, salted_hmac

from abonent.core import clock
from abonent.notifications.models import Event
from abonent.notifications.queueing import notify
from abonent.subscribers.models import ContactKind, ContactPoint

from .identify import Identified
from .models import CodeChannel, CodePurpose, OneTimeCode, PortalAccount

DIGITS = 6
MAX_TRIES = 5


class Sent(enum.StrEnum):
    """What became of a request for a code (the subscriber's page never shows it; the staff button does)."""

    SENT = "sent"
    NOBODY = "nobody"  # the login names no one (or several)
    NO_ADDRESS = "no_address"  # no phone (or e-mail) on the contract
    TOO_SOON = "too_soon"  # the last code went out less than the resend time ago
    HOURLY_LIMIT = "hourly_limit"


def new_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def hash_code(subscriber_id: int, code: str) -> str:
    return salted_hmac("abonent.portal.code", f"{subscriber_id}:{code}", algorithm="sha256").hexdigest()


def clean_code(raw: str) -> str:
    """The digits of what was typed ("123 456", "123-456"); "" when that is not ``DIGITS`` digits."""
    digits = "".join(ch for ch in (raw or "") if not ch.isspace() and ch != "-")
    return digits if len(digits) == DIGITS and digits.isdigit() and digits.isascii() else ""


def code_minutes() -> int:
    return max(1, -(-settings.ABONENT_PORTAL_CODE_SECONDS // 60))


# --- where a code goes, and how the page shows it ---------------------------------------------------------------


def destinations(subscriber_id: int) -> dict[str, str]:
    """``{"sms": phone, "email": address}`` that a code would go to: the first of each kind in the order the
    notifications app picks (primary first), so the mask shown is the address the code reaches."""
    found: dict[str, str] = {}
    rows = ContactPoint.objects.filter(subscriber_id=subscriber_id).order_by("kind", "-is_primary", "id")
    for kind, value in rows.values_list("kind", "value"):
        channel = CodeChannel.SMS if kind == ContactKind.PHONE else CodeChannel.EMAIL
        found.setdefault(channel, value)
    return found


# What the page shows of an address is only what a made-up mask can show as well, drawn so that it looks like
# real data: the last two digits of a phone (uniform in real numbers too), and of an e-mail the first character
# of the mailbox and of the domain and the top-level domain. The rest of a phone (the country, a landline's city
# code, a foreign number's length) and of an e-mail (a company's domain) would tell a real subscriber from a
# made-up one, and is never shown. A character or top-level domain outside what the made-up masks draw from
# (``_ALNUM``, ``TLDS``) is shown as stars.
PHONE_MASK = "*** ***-**-"
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
TLDS = ("ru", "com", "net", "org", "su", "рф", "info", "by", "kz")
# Weighted as Russian subscribers' addresses are, roughly: each character appears as often as its share. The
# first letters of mailboxes (transliterated names and nicknames)...
_LOCAL_WEIGHTED = (
    "aaaaaaaaasssssssmmmmmmmkkkkkkkddddddvvvvvvnnnnniiiiieeeeoooottttllllppppggggbbbrrryyzzffcchwjux0123456789"
)
# ...and the domains with their top-level domain: mail.ru, yandex.ru, gmail.com, bk.ru, list.ru, inbox.ru,
# rambler.ru, ya.ru, outlook.com, hotmail.com, and a company's or a provider's own .ru, .com, .net, .org.
_DOMAINS_WEIGHTED = (
    *[("m", "ru")] * 38,
    *[("y", "ru")] * 24,
    *[("g", "com")] * 14,
    *[("b", "ru")] * 4,
    *[("l", "ru")] * 3,
    *[("i", "ru")] * 3,
    *[("r", "ru")] * 3,
    ("o", "com"),
    ("h", "com"),
    *[(letter, "ru") for letter in "acdefknpstv"],
    ("s", "net"),
    ("p", "org"),
)
# One made-up mask in this many is drawn from every shape the page can show, so that no real mask is one a
# made-up one never is (a .by address, a mailbox starting with a digit).
_ANY_SHAPE_ONE_IN = 20


def _shown_char(text: str) -> str:
    first = text[:1].lower()
    return first if first and first in _ALNUM else "*"


def mask_phone(e164: str) -> str:
    """``+79161234567`` → ``*** ***-**-67``: the last two digits only (see above)."""
    digits = [ch for ch in e164 if ch.isdigit()]
    return PHONE_MASK + "".join(digits[-2:]).rjust(2, "*")


def _mask_email_parts(local_char: str, domain_char: str, tld: str) -> str:
    return f"{local_char}***@{domain_char}***.{tld}"


def mask_email(address: str) -> str:
    """``yuri.ivanov@tver-zavod.ru`` → ``y***@t***.ru`` (see above)."""
    local, _sep, domain = address.rpartition("@")
    tld = domain.rpartition(".")[2].lower()
    return _mask_email_parts(_shown_char(local), _shown_char(domain), tld if tld in TLDS else "***")


def _decoy(identified: Identified, channel: str) -> str:
    """A believable mask for a login that names nobody, or a channel the contract has no address on: drawn from
    the shapes real masks take (see above) by an HMAC (``SECRET_KEY``) of the canonical login, so it is the same
    for every spelling and every time, and cannot be told from a real one's. An unknown phone shows its own last
    digits, as it would on the contract it is the primary phone of."""
    digest = salted_hmac("abonent.portal.decoy", f"{identified.key}:{channel}", algorithm="sha256").digest()
    draw = [int.from_bytes(digest[i : i + 4], "big") for i in range(0, 32, 4)]
    if channel == CodeChannel.SMS:
        return mask_phone(identified.phone) if identified.phone else f"{PHONE_MASK}{draw[0] % 100:02d}"
    if draw[1] % _ANY_SHAPE_ONE_IN == 0:
        shapes = _ALNUM + "*"
        tlds = (*TLDS, "***")
        local_char, domain_char = shapes[draw[2] % len(shapes)], shapes[draw[3] % len(shapes)]
        return _mask_email_parts(local_char, domain_char, tlds[draw[4] % len(tlds)])
    domain_char, tld = _DOMAINS_WEIGHTED[draw[3] % len(_DOMAINS_WEIGHTED)]
    return _mask_email_parts(_LOCAL_WEIGHTED[draw[2] % len(_LOCAL_WEIGHTED)], domain_char, tld)


def masked_destinations(identified: Identified) -> list[tuple[str, str, str]]:
    """``[(channel, label, mask)]`` for the page that asks where to send the code: always both channels."""
    real = destinations(identified.subscriber.pk) if identified.subscriber is not None else {}
    rows = []
    for channel, label in CodeChannel.choices:
        address = real.get(channel, "")
        if address:
            mask = mask_phone(address) if channel == CodeChannel.SMS else mask_email(address)
        else:
            mask = _decoy(identified, channel)
        rows.append((channel, label, mask))
    return rows


# --- sending ------------------------------------------------------------------------------------------------------


@transaction.atomic
def issue_code(
    subscriber,
    *,
    channel: str,
    ip_address: str | None = None,
    purpose: str = CodePurpose.SET_PASSWORD,
    address: str = "",
) -> tuple[Sent, OneTimeCode | None]:
    """Send a new code to ``subscriber`` on ``channel`` unless the allowance says no; the older codes stop
    working. The portal account row is locked first, so two requests at once cannot both pass the allowance.

    ``CONFIRM_CONTACT``: the code goes to ``address`` (the new phone or e-mail), and replaces only the live code of
    the same channel, so a new phone and a new e-mail can wait for their codes together; its allowance is its own,
    so proving a new phone does not use up the login codes."""
    confirming = purpose == CodePurpose.CONFIRM_CONTACT
    if not confirming:
        address = destinations(subscriber.pk).get(channel, "")
    if not address:
        return Sent.NO_ADDRESS, None
    now = clock.now()
    PortalAccount.objects.select_for_update().get_or_create(subscriber=subscriber, defaults={"created_at": now})
    codes = OneTimeCode.objects.filter(subscriber_id=subscriber.pk, purpose=purpose)
    if codes.filter(created_at__gt=now - dt.timedelta(hours=1)).count() >= settings.ABONENT_PORTAL_CODES_PER_HOUR:
        return Sent.HOURLY_LIMIT, None
    replaced = codes.filter(channel=channel) if confirming else codes
    resend = dt.timedelta(seconds=settings.ABONENT_PORTAL_CODE_RESEND_SECONDS)
    if replaced.filter(created_at__gt=now - resend).exists():
        return Sent.TOO_SOON, None
    replaced.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
    code = new_code()
    row = OneTimeCode.objects.create(
        subscriber=subscriber,
        purpose=purpose,
        channel=channel,
        code_hash=hash_code(subscriber.pk, code),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.ABONENT_PORTAL_CODE_SECONDS),
        ip_address=ip_address,
        address=address if confirming else "",
    )
    # The outbox row commits with the code: both or neither.
    notify(
        subscriber.pk,
        Event.CONTACT_CODE if confirming else Event.LOGIN_CODE,
        key=f"{purpose}:{row.pk}" if confirming else f"login_code:{row.pk}",
        context={"code": code, "minutes": code_minutes()},
        channels=(channel,),
        to=address if confirming else None,
    )
    return Sent.SENT, row


# --- checking -----------------------------------------------------------------------------------------------------


class CodeCheck(enum.StrEnum):
    RIGHT = "right"
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"
    EXHAUSTED = "exhausted"  # the right code after MAX_TRIES wrong ones: ask for a new one


def check_code(subscriber_id: int, code: str) -> tuple[CodeCheck, OneTimeCode | None]:
    """Compare ``code`` with the subscriber's newest code (locked: run inside ``transaction.atomic``). A wrong
    code counts against the newest code's tries while it is live. Says more than WRONG only for the right code."""
    newest = (
        OneTimeCode.objects.select_for_update()
        .filter(subscriber_id=subscriber_id, purpose=CodePurpose.SET_PASSWORD)
        .order_by("-created_at", "-id")
        .first()
    )
    if newest is None:
        constant_time_compare(hash_code(subscriber_id, code), "0" * 64)
        return CodeCheck.WRONG, None
    now = clock.now()
    if not constant_time_compare(hash_code(subscriber_id, code), newest.code_hash):
        if newest.used_at is None and now < newest.expires_at:
            OneTimeCode.objects.filter(pk=newest.pk).update(attempts=F("attempts") + 1)
        return CodeCheck.WRONG, newest
    if newest.used_at is not None:
        return CodeCheck.USED, newest
    if now >= newest.expires_at:
        return CodeCheck.EXPIRED, newest
    if newest.attempts >= MAX_TRIES:
        return CodeCheck.EXHAUSTED, newest
    return CodeCheck.RIGHT, newest


def live_contact_codes(subscriber_id: int, *, lock: bool = False):
    """The subscriber's ``CONFIRM_CONTACT`` codes that may still be used (unused, unexpired, tried less than
    ``MAX_TRIES`` times): at most one per channel, newest first."""
    rows = OneTimeCode.objects.filter(
        subscriber_id=subscriber_id,
        purpose=CodePurpose.CONFIRM_CONTACT,
        used_at__isnull=True,
        expires_at__gt=clock.now(),
        attempts__lt=MAX_TRIES,
    ).order_by("-created_at", "-id")
    return rows.select_for_update() if lock else rows


def check_contact_code(subscriber_id: int, code: str) -> tuple[CodeCheck, OneTimeCode | None]:
    """Which live ``CONFIRM_CONTACT`` code ``code`` is (RIGHT and its row), else WRONG (each live code's tries
    counted) or EXPIRED (no live code: it expired, was used, or was tried too often). Run inside
    ``transaction.atomic`` (the rows are locked) and let it commit: the tries must stay counted."""
    live = list(live_contact_codes(subscriber_id, lock=True))
    if not live:
        constant_time_compare(hash_code(subscriber_id, code), "0" * 64)
        return CodeCheck.EXPIRED, None
    hashed = hash_code(subscriber_id, code)
    for row in live:
        if constant_time_compare(hashed, row.code_hash):
            return CodeCheck.RIGHT, row
    OneTimeCode.objects.filter(pk__in=[row.pk for row in live]).update(attempts=F("attempts") + 1)
    return CodeCheck.WRONG, None


def use_code(row: OneTimeCode) -> None:
    OneTimeCode.objects.filter(pk=row.pk).update(used_at=clock.now())
