"""The QIWI/OSMP ``check``/``pay`` protocol that payment terminals and bank apps speak (notes/payments-ru.md §3;
https://developer.qiwi.com/ru/qd-qiwi-provider-protocol/).

The agent calls ``/pay/agents/<code>/?command=check|pay&txn_id=…&account=…&sum=…[&txn_date=YYYYMMDDHHMMSS]`` (GET,
or POST urlencoded) and reads an XML answer whose ``result`` says what to do: 0 done, 1 retry later, anything else
final (the agent gives the money back to the payer). ``check`` asks whether a payment to the account would be
taken and writes nothing; ``pay`` takes it through the one intake (``actions.do_receive_payment``), once per
``txn_id``: a repeat answers 0 with the same ``prv_txn`` (our payment id).

Decisions (docs/payments-terminals.md):
- ``account`` is our account number or the old system's (``subscribers.accounts.subscriber_by_account``, exact:
  leading zeros count). Digits nobody has answer 5; a number of our length with a wrong check digit, or anything but
  ASCII digits, answers 4.
- ``pay`` to an unknown account answers 5 and takes nothing: the terminal calls ``check`` first and refuses the
  payer there, so a ``pay`` for an unknown account is an agent's error, and the money is better returned by the
  agent, who has the payer at hand, than parked in our suspense where staff must find whose it is.
- ``pay`` to a closed account answers 79 when the agent takes active accounts only (the default); otherwise it is
  taken into suspense (``closed_account``) for staff to assign or return.
- A repeat of a ``txn_id`` already taken answers as the first time, even if the account has since been closed.
- The same ``txn_id`` with another sum or account answers 300; intake records the conflict for staff.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.subscribers.accounts import as_account_number, subscriber_by_account
from abonent.subscribers.models import Subscriber, SubscriberStatus
from abonent.subscribers.validators import validate_account_number

from ..models import Payment, PaymentMethod, PaymentStatus


class Result(IntEnum):
    OK = 0
    TEMPORARY = 1  # retry later (the database did not answer within its deadline)
    ACCOUNT_FORMAT = 4
    ACCOUNT_NOT_FOUND = 5
    FORBIDDEN = 7  # payments through this agent are switched off
    ACCOUNT_CLOSED = 79
    SUM_TOO_SMALL = 241
    SUM_TOO_LARGE = 242
    OTHER = 300  # a missing or malformed parameter, a txn_id reused with another sum, no access


@dataclass
class Answer:
    result: Result
    comment: str = ""
    txn_id: str = ""
    prv_txn: str = ""
    sum: str = ""
    prv_txn_date: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200  # HTTP status; 403 for a caller we do not know

    def render(self) -> bytes:
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<response>']
        parts.append(f"<osmp_txn_id>{_text(self.txn_id)}</osmp_txn_id>")
        if self.prv_txn:
            parts.append(f"<prv_txn>{_text(self.prv_txn)}</prv_txn>")
        if self.prv_txn_date:
            parts.append(f"<prv_txn_date>{self.prv_txn_date}</prv_txn_date>")
        parts.append(f"<sum>{_text(self.sum)}</sum>")
        parts.append(f"<result>{int(self.result)}</result>")
        parts.append(f"<comment>{_text(self.comment)}</comment>")
        if self.fields:
            parts.append("<fields>")
            for i, (name, value) in enumerate(self.fields, start=1):
                parts.append(f'<field{i} name="{_text(name)}">{_text(value)}</field{i}>')
            parts.append("</fields>")
        parts.append("</response>\n")
        return "".join(parts).encode("utf-8")


# Characters XML 1.0 cannot carry at all (control characters other than tab and line breaks, lone surrogates).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value) -> str:
    return escape(_NOT_XML.sub("\ufffd", str(value)))


# --- Parameters -------------------------------------------------------------------------------------------------

TXN_ID_MAX = 100  # Payment.external_id
_TXN_ID = re.compile(rf"[0-9A-Za-z._\-]{{1,{TXN_ID_MAX}}}\Z")
# Up to 12 integer digits (what a MoneyField holds), at most 2 decimals, no sign, exponent or thousands separator.
_SUM = re.compile(r"(\d{1,12})(?:\.(\d{1,2}))?\Z", re.ASCII)
_TXN_DATE = re.compile(r"\d{14}\Z", re.ASCII)
ACCOUNT_MAX = 20  # Subscriber.account_number and legacy_account


class BadParameter(Exception):
    def __init__(self, result: Result, comment: str):
        super().__init__(comment)
        self.result = result
        self.comment = comment


def parse_txn_id(value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise BadParameter(Result.OTHER, _("txn_id is missing."))
    if not _TXN_ID.match(value):
        raise BadParameter(Result.OTHER, _("txn_id is not valid."))
    return value


def parse_sum(value: str | None, agent) -> Decimal:
    """The sum, within the agent's limits; ``agent`` None skips the limits (a repeat of a payment taken)."""
    value = (value or "").strip()
    if not value:
        raise BadParameter(Result.OTHER, _("sum is missing."))
    match = _SUM.match(value)
    if not match:
        raise BadParameter(Result.OTHER, _("sum is not valid."))
    amount = Decimal(f"{match[1]}.{(match[2] or '').ljust(2, '0')}")
    if agent is None:
        return amount
    if amount < agent.min_sum:
        raise BadParameter(Result.SUM_TOO_SMALL, _("The sum is below %(min)s.") % {"min": agent.min_sum})
    if amount > agent.max_sum:
        raise BadParameter(Result.SUM_TOO_LARGE, _("The sum is above %(max)s.") % {"max": agent.max_sum})
    return amount


def parse_account(value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise BadParameter(Result.OTHER, _("account is missing."))
    if len(value) > ACCOUNT_MAX or not value.isprintable():
        raise BadParameter(Result.ACCOUNT_FORMAT, _("The account number is not valid."))
    return value


def parse_txn_date(value: str | None, agent) -> dt.datetime | None:
    """``YYYYMMDDHHMMSS`` in the agent's time zone; None when not sent (the moment we take it then)."""
    value = (value or "").strip()
    if not value:
        return None
    if not _TXN_DATE.match(value):
        raise BadParameter(Result.OTHER, _("txn_date is not valid."))
    try:
        moment = dt.datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=agent.tz)
    except ValueError:
        raise BadParameter(Result.OTHER, _("txn_date is not valid.")) from None
    now = clock.now()
    # An agent's clock may run a little ahead; a date a day ahead or decades back is a malformed request.
    if moment > now + dt.timedelta(days=1) or moment.year < 2000:
        raise BadParameter(Result.OTHER, _("txn_date is not valid."))
    return moment


def find_subscriber(account: str, *, lock: bool = False) -> Subscriber | None:
    """Our account number, else the old system's (docs/adr/0019): payers keep typing the number on their old
    receipts. One indexed query for ours, a second only when it names nobody. ``lock``: the row lock ``pay`` takes
    (``_intake``)."""
    return subscriber_by_account(account, lock=lock)


def _well_formed(account: str) -> bool:
    """Whether nobody having ``account`` is "not found" (5) rather than "wrong format" (4): digits that could be an
    old account number, or ours with a right check digit. A number of our length whose check digit is wrong is a
    typo the digit caught, told to the payer as 4 so that the terminal asks again."""
    if as_account_number(account) is None:
        return False
    if len(account) != settings.ABONENT_ACCOUNT_NUMBER_LENGTH:
        return True
    try:
        validate_account_number(account)
    except ValidationError:
        return False
    return True


def _no_account(account: str) -> BadParameter:
    # A number that breaks the format (letters, a typo our check digit caught) is 4; a well-formed one nobody has is 5.
    if _well_formed(account):
        return BadParameter(Result.ACCOUNT_NOT_FOUND, _("Account not found."))
    return BadParameter(Result.ACCOUNT_FORMAT, _("The account number is not valid."))


# --- Commands ---------------------------------------------------------------------------------------------------


def check(agent, params) -> Answer:
    """Whether ``pay`` with these parameters would be taken. Reads only."""
    txn_id = parse_txn_id(params.get("txn_id"))
    account = parse_account(params.get("account"))
    amount = parse_sum(params.get("sum"), agent)
    subscriber = find_subscriber(account)
    if subscriber is None:
        raise _no_account(account)
    if subscriber.status == SubscriberStatus.CLOSED and agent.active_accounts_only:
        raise BadParameter(Result.ACCOUNT_CLOSED, _("The account is closed."))
    answer = Answer(Result.OK, "OK", txn_id=txn_id, sum=f"{amount:.2f}")
    if agent.show_details:
        answer.fields = _details(subscriber)
    return answer


def _details(subscriber: Subscriber) -> list[tuple[str, str]]:
    """Shown on the terminal's screen to whoever typed the number: a masked name (not the full one, 152-FZ) and
    the balance, so the payer sees it is the right account and how much is due."""
    from abonent.billing.selectors import get_balance

    words = (subscriber.display_name or "").split()
    masked = " ".join([words[0][:1] + "***"] + [w[:1] + "." for w in words[1:3]]) if words else ""
    balance = get_balance(subscriber).balance
    return [("fio", masked), ("balance", f"{balance:.2f}")]


def repeat(agent, params) -> Answer | None:
    """The answer to a ``pay`` whose ``txn_id`` this agent already took, or None. Called where the agent's active
    flag would refuse it (``pay`` does the same where its sum limits would): a retry of a payment we credited (the
    agent lost our answer) gets the same ``prv_txn`` whatever staff changed since; a final refusal would make the
    agent hand the money back to the payer while the subscriber keeps the credit."""
    if (params.get("command") or "") != "pay":
        return None
    txn_id = (params.get("txn_id") or "").strip()
    if not _TXN_ID.match(txn_id):
        return None
    if not _taken(agent, txn_id):
        return None
    try:
        return pay(agent, params, limits=False)
    except BadParameter as exc:
        return Answer(exc.result, exc.comment, txn_id=txn_id)


def _taken(agent, txn_id: str) -> bool:
    return Payment.objects.filter(channel=agent.channel, external_id=txn_id).exists()


def pay(agent, params, *, limits: bool = True) -> Answer:
    txn_id = parse_txn_id(params.get("txn_id"))
    account = parse_account(params.get("account"))
    try:
        amount = parse_sum(params.get("sum"), agent if limits else None)
    except BadParameter as exc:
        # Past the agent's limits as they are now: a retry of a pay taken before staff changed them is answered as
        # the first time was (no extra query on the hot path: looked up only when the limits refuse).
        if exc.result not in (Result.SUM_TOO_SMALL, Result.SUM_TOO_LARGE) or not _taken(agent, txn_id):
            raise
        amount = parse_sum(params.get("sum"), None)
    received_at = parse_txn_date(params.get("txn_date"), agent)
    fast = _fast_pay(agent, txn_id, account, amount, received_at)
    if fast is not None:
        return fast
    try:
        with transaction.atomic():
            intake = _intake(agent, txn_id, account, amount, received_at)
    except ValidationError as exc:
        return Answer(Result.OTHER, " ".join(exc.messages)[:200], txn_id=txn_id, sum=f"{amount:.2f}")
    payment = intake.payment
    return _taken_answer(
        agent,
        txn_id,
        amount,
        conflict=intake.conflict is not None,
        payment_id=payment.pk,
        status=payment.status,
        paid=payment.amount,
        created_at=payment.created_at,
    )


def _intake(agent, txn_id: str, account: str, amount: Decimal, received_at):
    """``pay`` through the intake. The number is looked up under the subscriber's row lock, which the intake keeps
    until it commits (the fast path's ``FOR UPDATE``): a number moved to another subscriber before that (an import,
    staff) is credited to whoever holds it when the money is, never to the one who held it a moment earlier."""
    from ..actions import do_receive_payment

    # The lock wait is bounded by the agent's deadline, which the agents' view set on this transaction.
    subscriber = find_subscriber(account, lock=True)
    refusal = None
    if subscriber is None:
        refusal = _no_account(account)
    elif subscriber.status == SubscriberStatus.CLOSED and agent.active_accounts_only:
        refusal = BadParameter(Result.ACCOUNT_CLOSED, _("The account is closed."))
    if refusal is not None:
        # A repeat of a payment taken before the account went away is answered as the first time was.
        if not Payment.objects.filter(channel=agent.channel, external_id=txn_id).exists():
            raise refusal
        subscriber = None
    return do_receive_payment(
        channel=agent.channel,
        external_id=txn_id,
        amount=amount,
        method=PaymentMethod.TERMINAL,
        subscriber=subscriber,
        account_ref=account,
        received_at=received_at,
    )


def _taken_answer(
    agent, txn_id: str, amount: Decimal, *, conflict: bool, payment_id, status, paid, created_at
) -> Answer:
    """The answer to a ``pay`` the intake (or the fast path) took: new, repeated, in conflict or cancelled."""
    if conflict:
        return Answer(
            Result.OTHER,
            _("This txn_id was paid with another sum or account."),
            txn_id=txn_id,
            prv_txn=str(payment_id),
            sum=f"{amount:.2f}",
        )
    if status == PaymentStatus.CANCELLED:
        # Staff cancelled it as a mistake: the repeat must not look like a fresh success.
        return Answer(Result.OTHER, _("This payment was cancelled."), txn_id=txn_id, prv_txn=str(payment_id))
    return Answer(
        Result.OK,
        "OK",
        txn_id=txn_id,
        prv_txn=str(payment_id),
        sum=f"{paid:.2f}",
        prv_txn_date=created_at.astimezone(agent.tz).strftime("%Y%m%d%H%M%S"),
    )


def _fast_pay(agent, txn_id: str, account: str, amount: Decimal, received_at) -> Answer | None:
    """``pay`` in one round trip (``actions.fastpay``), answered as below; None: it does not apply here."""
    from ..actions.fastpay import receive_terminal_payment
    from ..checks import payment_amount

    try:
        payment_amount(amount)  # what the intake refuses first: past AMOUNT_LIMIT (an agent's max_sum may allow it)
    except ValidationError as exc:
        return Answer(Result.OTHER, " ".join(exc.messages)[:200], txn_id=txn_id, sum=f"{amount:.2f}")
    fast = receive_terminal_payment(
        channel=agent.channel,
        external_id=txn_id,
        amount=amount,
        account=account,
        received_at=received_at,
        closed_to_suspense=not agent.active_accounts_only,
    )
    if fast is None:
        return None
    if fast.outcome == "no_account":
        raise _no_account(account)
    if fast.outcome == "closed":
        raise BadParameter(Result.ACCOUNT_CLOSED, _("The account is closed."))
    return _taken_answer(
        agent,
        txn_id,
        amount,
        conflict=fast.outcome == "conflict",
        payment_id=fast.payment_id,
        status=fast.status,
        paid=fast.amount,
        created_at=fast.created_at,
    )


COMMANDS = {"check": check, "pay": pay}
