"""The cash desk: a cashier takes cash from a subscriber, closes the day; one-time tokens of console forms.

Guarantees, as the other payments actions: access checked (``PAYMENT_TAKE`` and the subscriber's branch), input
validated before anything is written, one transaction, an audit row, events after commit (through the intake).

A cashier's day (``CashDay``) is locked by every payment of the day, by a cancel of one and by the close, so the
close counts exactly what was taken, and nothing is taken or cancelled in a day once it is closed.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing.actions.adjustments import manual_amount_limit
from abonent.billing.actions.common import _positive_amount
from abonent.core import audit, clock
from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.models import SubscriberStatus

from ..models import CashDay, FormSubmission, Payment, PaymentMethod
from .common import check
from .intake import Intake, do_receive_payment

CASH_CHANNEL = "cash"
_TOKEN = re.compile(r"[0-9a-f]{32}")


class AlreadySubmitted(Exception):
    """The form with this token was sent before and what it asked for is done."""

    def __init__(self, submission: FormSubmission):
        super().__init__(submission.token)
        self.submission = submission


def new_form_token() -> str:
    return secrets.token_hex(16)


def form_token_of(value) -> str:
    token = str(value or "").strip()
    if not _TOKEN.fullmatch(token):
        raise ValidationError(
            {"token": ValidationError(_("The form has expired: open it again."), code="form_token_invalid")}
        )
    return token


def do_record_submission(token, *, kind: str, acting_user, payment: Payment | None = None) -> FormSubmission:
    """Mark the form with ``token`` as sent, in the caller's transaction (with the action it asked for): a second
    send of it raises ``AlreadySubmitted`` — a concurrent one waits for the first to commit or roll back."""
    token = form_token_of(token)
    try:
        with transaction.atomic():
            return FormSubmission.objects.create(
                token=token, kind=kind[:40], user=acting_user, payment=payment, created_at=clock.now()
            )
    except IntegrityError:
        first = FormSubmission.objects.filter(token=token).first()
        if first is None:
            raise
        raise AlreadySubmitted(first) from None


def _locked_day(cashier, day: dt.date) -> CashDay:
    """The cashier's day, created open if it does not exist yet, locked until the caller's transaction ends."""
    try:
        with transaction.atomic():
            CashDay.objects.get_or_create(cashier=cashier, date=day, defaults={"opened_at": clock.now()})
    except IntegrityError:
        pass  # opened concurrently by the cashier's other request
    return CashDay.objects.select_for_update().get(cashier=cashier, date=day)


def lock_cash_day_of(payment: Payment) -> CashDay | None:
    """Lock the day of the cashier who took ``payment`` (if it has one), for a cancel deciding on it."""
    if not payment.taken_by_id:
        return None
    day = timezone.localdate(payment.received_at)
    return CashDay.objects.select_for_update().filter(cashier_id=payment.taken_by_id, date=day).first()


def is_day_closed(cashier_id: int, day: dt.date) -> bool:
    return CashDay.objects.filter(cashier_id=cashier_id, date=day, closed_at__isnull=False).exists()


def _closed_error(day: dt.date) -> ValidationError:
    return ValidationError(
        _("The cash day of %(date)s is closed: nothing more is taken or cancelled in it.")
        % {"date": day.strftime("%d.%m.%Y")},
        code="cash_day_closed",
    )


def do_take_cash_payment(subscriber, *, amount, token, acting_user, memo: str = "") -> Intake:
    """Cash taken at the office from ``subscriber``: channel ``cash``, method ``cash``, the form's one-time
    ``token`` as the payment's id, so a double click or a resubmitted page credits once. A token already used
    for another subscriber, amount or cashier is refused (``form_token_reused``), never answered with another's
    payment."""
    check(acting_user, Perm.PAYMENT_TAKE, subscriber)
    token = form_token_of(token)
    # Money typed by a person is bounded as adjustments are (ABONENT_MAX_MANUAL_AMOUNT): three extra zeros at the
    # desk are refused, not booked as cash the cashier then cannot hand over.
    amount = _positive_amount(amount, limit=manual_amount_limit())
    if subscriber.status == SubscriberStatus.CLOSED:
        raise ValidationError(
            {"account": ValidationError(_("The subscriber's account is closed."), code="subscriber_closed")}
        )
    with transaction.atomic():
        day = _locked_day(acting_user, clock.today())
        first = Payment.objects.filter(channel=CASH_CHANNEL, external_id=token).first()
        if first is not None:
            return Intake(payment=_same_payment(first, subscriber, amount, acting_user), created=False)
        if day.is_closed:
            raise _closed_error(day.date)
        intake = do_receive_payment(
            channel=CASH_CHANNEL,
            external_id=token,
            amount=amount,
            method=PaymentMethod.CASH,
            subscriber=subscriber,
            acting_user=acting_user,
            memo=memo,
            payer=subscriber.display_name,
        )
        if not intake.created:  # a concurrent send of the same form won the insert
            _same_payment(intake.payment, subscriber, amount, acting_user)
            return Intake(payment=intake.payment, created=False)
        return intake


def do_take_staff_payment(
    subscriber, *, channel: str, external_id: str, amount, method: str, received_at, acting_user, memo: str = ""
) -> Intake:
    """A payment a staff member takes at the office or enters by hand outside the console's cash desk (the API's
    ``cash`` and ``manual`` channels): it belongs to the staff member's cash day of ``received_at`` (today when
    None), and is refused (``cash_day_closed``) once that day is closed, as the cash desk refuses it, whatever
    the channel or the date given. A repeat of a payment already taken is answered by the intake as before."""
    check(acting_user, Perm.PAYMENT_TAKE, subscriber)
    amount = _positive_amount(amount, limit=manual_amount_limit())  # typed by a person: as do_take_cash_payment
    with transaction.atomic():
        if not Payment.objects.filter(channel=channel, external_id=external_id).exists():
            day = timezone.localdate(received_at) if received_at is not None else clock.today()
            if _locked_day(acting_user, day).is_closed:
                raise ValidationError({"received_at": _closed_error(day)})
        return do_receive_payment(
            channel=channel,
            external_id=external_id,
            amount=amount,
            method=method,
            subscriber=subscriber,
            received_at=received_at,
            acting_user=acting_user,
            memo=memo,
        )


def _same_payment(payment: Payment, subscriber, amount, acting_user) -> Payment:
    if payment.subscriber_id != subscriber.pk or payment.taken_by_id != acting_user.pk or payment.amount != amount:
        raise ValidationError(
            {"token": ValidationError(_("This form was already used for another payment."), code="form_token_reused")}
        )
    return payment


@transaction.atomic
def do_close_cash_day(cashier, *, day: dt.date, acting_user) -> CashDay:
    """Close ``cashier``'s day: its totals are counted and frozen for the cash report. A cashier closes their own
    day; the administrator anyone's. A day without payments can be closed too (a zero report)."""
    check(acting_user, Perm.PAYMENT_TAKE)
    if acting_user.pk != cashier.pk and not has_perm(acting_user, Perm.PAYMENT_REFUND):
        raise ValidationError(_("A cashier closes only their own day."), code="cash_day_foreign")
    if day > clock.today():
        raise ValidationError({"day": ValidationError(_("This day has not come yet."), code="cash_day_future")})
    cash_day = _locked_day(cashier, day)
    if cash_day.is_closed:
        raise ValidationError(_("This cash day is closed already."), code="cash_day_closed")
    from ..selectors import cash_day_totals

    totals = cash_day_totals(cashier.pk, day)
    cash_day.payments_count = totals.payments_count
    cash_day.payments_total = totals.payments_total
    cash_day.cancelled_count = totals.cancelled_count
    cash_day.cancelled_total = totals.cancelled_total
    cash_day.refunds_total = totals.refunds_total
    cash_day.net_total = totals.net_total
    cash_day.totals_by_method = {method: str(amount) for method, amount in totals.by_method.items()}
    cash_day.closed_at = clock.now()
    cash_day.save()
    audit.record(
        actor=acting_user,
        action="payments.cash_day_closed",
        obj=cash_day,
        after={
            "cashier": cashier.get_username(),
            "date": day.isoformat(),
            "payments": cash_day.payments_total,
            "cancelled": cash_day.cancelled_total,
            "refunds": cash_day.refunds_total,
            "net": cash_day.net_total,
        },
    )
    return cash_day


def do_forget_form_submissions(*, older_than: dt.timedelta) -> int:
    """Delete form tokens recorded more than ``older_than`` ago (the daily job); returns how many."""
    deleted, _by_model = FormSubmission.objects.filter(created_at__lt=clock.now() - older_than).delete()
    return deleted
