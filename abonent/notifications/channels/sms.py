"""SMS through SMS.ru or SMSC, behind one ``SmsTransport``; ``ABONENT_SMS_PROVIDER`` picks one ("" = none).

Both take up to 100 messages in one HTTP request (SMS.ru ``multi[<phone>]=<text>``, SMSC ``list=``), and the
worker keeps several requests in flight, so a queue of thousands drains in seconds. A number that is not a
mobile phone is answered ``undeliverable`` here, without asking (and paying) the provider.

Provider errors (the codes of https://sms.ru/api/send and https://smsc.ru/api/http/send/): a bad or
unreachable number is final (``undeliverable``); a refused text or sender is final (``failed``); a fault of our
account (wrong key, no money, IP blocked) is retried with the backoff, because the operator can fix it within
the hours the retries span and the notices then go out instead of being dropped; anything else is retried.

Duplicates: SMSC requests carry our own ``id``. After an ambiguous failure (a timeout once the request was
out) that id is kept on the message, and the next attempt first asks ``status.php`` whether SMSC has it; only
"not found" (status -3) sends again. SMS.ru has no client id: an ambiguous timeout is retried, so a message may
(rarely) arrive twice — at least once, never lost.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache

import httpx
import phonenumbers
from django.conf import settings

from ..errors import MessageError
from ..models import Channel, Message
from . import http
from .base import UNBOUNDED, Budget, Outcome, Result, not_tried

logger = logging.getLogger(__name__)

_RU_MOBILE = re.compile(r"^\+79\d{9}$")
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


@lru_cache(maxsize=65536)
def mobile_digits(address: str, region: str = "RU") -> str | None:
    """The number as providers want it (digits of E.164, ``79161234567``), or ``None`` when it cannot take SMS."""
    if _RU_MOBILE.match(address):
        return address[1:]  # the common case, without parsing
    try:
        number = phonenumbers.parse(address, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def split_unique(items: list, key) -> list[list]:
    """``items`` in groups where no ``key`` repeats (a provider's batch is keyed by phone), order kept."""
    groups: list[tuple[set, list]] = []
    for item in items:
        k = key(item)
        for seen, group in groups:
            if k not in seen:
                seen.add(k)
                group.append(item)
                break
        else:
            groups.append(({k}, [item]))
    return [group for _seen, group in groups]


class SmsTransport:
    """What both providers share: the mobile check, the batching, one HTTP client."""

    channel = Channel.SMS
    max_batch = 100

    def __init__(self):
        self.http = http.client()
        self.sender = settings.ABONENT_SMS_SENDER
        self.region = settings.ABONENT_PHONE_REGION

    def send(self, messages: list[Message], budget: Budget = UNBOUNDED) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(messages)
        items = []
        for index, message in enumerate(messages):
            phone = mobile_digits(message.address, self.region)
            if phone is None:
                outcomes[index] = Outcome(Result.UNDELIVERABLE, error=MessageError.NOT_MOBILE, detail=message.address)
            else:
                items.append((index, message, phone))
        for group in split_unique(items, key=lambda item: item[2]):
            for (index, _message, _phone), outcome in zip(group, self._send(group, budget), strict=True):
                outcomes[index] = outcome
        return outcomes

    def _send(self, items: list[tuple[int, Message, str]], budget: Budget) -> list[Outcome]:
        """One outcome per item; ``budget.allows()`` asked before each request (``Result.NOT_TRIED`` if not)."""
        raise NotImplementedError


def _all(items, outcome: Outcome) -> list[Outcome]:
    return [outcome for _ in items]


def _json(response: httpx.Response) -> dict | None:
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# --- SMS.ru ---------------------------------------------------------------------------------------------------

# status_code → (result, error); 100 is "accepted". https://sms.ru/api/send (codes 200–500).
SMSRU_CODES = {
    202: (Result.UNDELIVERABLE, MessageError.BAD_ADDRESS),
    207: (Result.UNDELIVERABLE, MessageError.BAD_ADDRESS),
    209: (Result.UNDELIVERABLE, MessageError.STOP_LIST),
    203: (Result.FAILED, MessageError.TEXT_REJECTED),
    205: (Result.FAILED, MessageError.TEXT_REJECTED),
    204: (Result.FAILED, MessageError.SENDER_REJECTED),
    200: (Result.RETRY, MessageError.AUTH_FAILED),
    300: (Result.RETRY, MessageError.AUTH_FAILED),
    301: (Result.RETRY, MessageError.AUTH_FAILED),
    302: (Result.RETRY, MessageError.AUTH_FAILED),
    201: (Result.RETRY, MessageError.NO_BALANCE),
    206: (Result.RETRY, MessageError.RATE_LIMITED),
    230: (Result.RETRY, MessageError.RATE_LIMITED),
    231: (Result.RETRY, MessageError.RATE_LIMITED),
    232: (Result.RETRY, MessageError.RATE_LIMITED),
}


def _smsru_outcome(answer: dict) -> Outcome:
    try:
        code = int(answer.get("status_code"))
    except (TypeError, ValueError):
        code = None
    if code == 100 and answer.get("status") == "OK":
        return Outcome(Result.SENT, provider_id=str(answer.get("sms_id", ""))[:100])
    result, error = SMSRU_CODES.get(code, (Result.RETRY, MessageError.PROVIDER_ERROR))
    return Outcome(result, error=error, detail=f"{code} {answer.get('status_text', '')}".strip()[:500])


class SmsRu(SmsTransport):
    """``POST <ABONENT_SMSRU_URL>/sms/send`` with ``multi[<phone>]=<text>`` (up to 100), ``json=1``."""

    def _send(self, items, budget):
        if not budget.allows():
            return not_tried(len(items))
        data = {"api_id": settings.ABONENT_SMSRU_API_ID, "json": "1"}
        if self.sender:
            data["from"] = self.sender
        for _index, message, phone in items:
            data[f"multi[{phone}]"] = message.body
        try:
            response = http.call(self.http, "POST", f"{settings.ABONENT_SMSRU_URL}/sms/send", data=data)
        except httpx.HTTPError as exc:
            return _all(items, http.failure(exc))
        answer = _json(response) if response.status_code == 200 else None
        if answer is None:
            if response.status_code == 200:
                # An answer we cannot read: the messages may have been taken, as after a timeout.
                return _all(items, Outcome(Result.RETRY, error=MessageError.TIMEOUT, detail=response.text[:200]))
            return _all(items, http.http_error(response))
        if answer.get("status") != "OK":
            return _all(items, _smsru_outcome(answer))  # the whole request refused (key, balance, …)
        per_number = answer.get("sms") or {}
        outcomes = []
        for _index, _message, phone in items:
            number = per_number.get(phone)
            if not isinstance(number, dict):
                outcomes.append(Outcome(Result.RETRY, error=MessageError.TIMEOUT, detail="no status for the number"))
            else:
                outcomes.append(_smsru_outcome(number))
        return outcomes


# --- SMSC -----------------------------------------------------------------------------------------------------

# error_code → (result, error). https://smsc.ru/api/http/send/ "Ошибки".
SMSC_CODES = {
    1: (Result.FAILED, MessageError.PROVIDER_ERROR),  # a parameter is wrong: our request will not get better
    2: (Result.RETRY, MessageError.AUTH_FAILED),
    3: (Result.RETRY, MessageError.NO_BALANCE),
    4: (Result.RETRY, MessageError.RATE_LIMITED),  # IP blocked for a while after too many errors
    5: (Result.FAILED, MessageError.PROVIDER_ERROR),
    6: (Result.FAILED, MessageError.TEXT_REJECTED),
    7: (Result.UNDELIVERABLE, MessageError.BAD_ADDRESS),
    8: (Result.UNDELIVERABLE, MessageError.BAD_ADDRESS),
    9: (Result.RETRY, MessageError.RATE_LIMITED),  # the same request twice within a minute
}
SMSC_NOT_FOUND = -3  # status.php: "message not found"


class Smsc(SmsTransport):
    """``POST <ABONENT_SMSC_URL>/send.php`` with ``list=<phone>:<text>`` lines (or ``phones``/``mes`` for
    one), ``fmt=3`` (JSON), ``op=1`` (a status per number), ``charset=utf-8`` and our ``id``."""

    def _auth(self) -> dict:
        if settings.ABONENT_SMSC_APIKEY:
            return {"apikey": settings.ABONENT_SMSC_APIKEY}
        return {"login": settings.ABONENT_SMSC_LOGIN, "psw": settings.ABONENT_SMSC_PASSWORD}

    def _send(self, items, budget):
        outcomes: dict[int, Outcome] = {}
        fresh = []
        for item in items:
            _index, message, phone = item
            if message.error == MessageError.TIMEOUT and message.provider_id:
                if not budget.allows():
                    # Not asked yet: the ambiguity (id and mark) stays for the next attempt.
                    outcomes[item[0]] = Outcome(Result.NOT_TRIED)
                    continue
                known = self._status(message.provider_id, phone)
                if known is not None:
                    outcomes[item[0]] = known
                    continue
            fresh.append(item)
        if fresh:
            for item, outcome in zip(fresh, self._submit(fresh, budget), strict=True):
                outcomes[item[0]] = outcome
        return [outcomes[item[0]] for item in items]

    def _status(self, smsc_id: str, phone: str) -> Outcome | None:
        """What SMSC knows of a request that may have gone out: ``None`` when it has not (send again)."""
        params = {**self._auth(), "phone": phone, "id": smsc_id, "fmt": "3"}
        try:
            response = http.call(self.http, "GET", f"{settings.ABONENT_SMSC_URL}/status.php", params=params)
        except httpx.HTTPError as exc:
            outcome = http.failure(exc)
            # Still unknown whether it went: keep the id and the ambiguity for the next attempt.
            return Outcome(Result.RETRY, provider_id=smsc_id, error=MessageError.TIMEOUT, detail=outcome.detail)
        answer = _json(response) if response.status_code == 200 else None
        if answer is None or "error" in answer or "status" not in answer:
            detail = (answer or {}).get("error") or f"HTTP {response.status_code}"
            return Outcome(Result.RETRY, provider_id=smsc_id, error=MessageError.TIMEOUT, detail=str(detail)[:500])
        status = _int(answer.get("status"))
        if status is None:
            # Not a status we can read: still unknown whether it went, so the id and the mark stay.
            detail = f"status.php: {str(answer.get('status'))[:100]}"
            return Outcome(Result.RETRY, provider_id=smsc_id, error=MessageError.TIMEOUT, detail=detail)
        if status == SMSC_NOT_FOUND:
            return None
        return Outcome(Result.SENT, provider_id=smsc_id, detail="found by status.php after a timeout")

    def _submit(self, items, budget: Budget) -> list[Outcome]:
        if not budget.allows():
            return not_tried(len(items))
        smsc_id = str(items[0][1].pk)  # ours, so a retry can ask status.php by (id, phone)
        data = {**self._auth(), "fmt": "3", "charset": "utf-8", "op": "1", "id": smsc_id}
        if self.sender:
            data["sender"] = self.sender
        if len(items) == 1:
            data["phones"], data["mes"] = items[0][2], items[0][1].body
        else:
            # One line per message; a line break inside a text is written \n (SMSC's list format).
            lines = (f"{phone}:{message.body.replace(chr(10), chr(92) + 'n')}" for _i, message, phone in items)
            data["list"] = "\n".join(lines)
        try:
            response = http.call(self.http, "POST", f"{settings.ABONENT_SMSC_URL}/send.php", data=data)
        except httpx.HTTPError as exc:
            outcome = http.failure(exc)
            if outcome.error == MessageError.TIMEOUT:
                outcome.provider_id = smsc_id
            return _all(items, outcome)
        answer = _json(response) if response.status_code == 200 else None
        if answer is None:
            if response.status_code == 200:
                return _all(items, Outcome(Result.RETRY, provider_id=smsc_id, error=MessageError.TIMEOUT))
            return _all(items, http.http_error(response))
        if "error_code" in answer or "error" in answer:
            code = _int(answer.get("error_code"))
            if code in (7, 8) and len(items) > 1:
                # Which number of the list? Each alone: SMSC refused the whole request, nothing went out.
                return [outcome for item in items for outcome in self._submit([item], budget)]
            result, error = SMSC_CODES.get(code, (Result.RETRY, MessageError.PROVIDER_ERROR))
            return _all(items, Outcome(result, error=error, detail=f"{code} {answer.get('error', '')}".strip()[:500]))
        per_phone = {}
        for entry in answer.get("phones") or ():
            if isinstance(entry, dict) and entry.get("error"):
                per_phone[str(entry.get("phone", "")).lstrip("+")] = entry
        outcomes = []
        for _index, _message, phone in items:
            entry = per_phone.get(phone)
            if entry is None:
                outcomes.append(Outcome(Result.SENT, provider_id=smsc_id))
            else:
                outcomes.append(
                    Outcome(Result.UNDELIVERABLE, error=MessageError.BAD_ADDRESS, detail=str(entry["error"])[:500])
                )
        return outcomes


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


PROVIDERS = {"smsru": SmsRu, "smsc": Smsc}


def sms_transport() -> SmsTransport | None:
    provider = (settings.ABONENT_SMS_PROVIDER or "").strip().lower()
    return PROVIDERS[provider]() if provider in PROVIDERS else None
