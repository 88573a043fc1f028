"""Online payments at a gateway: a checkout started, its outcome learnt and credited exactly once, the provider's
notices, and refunds sent back through the gateway.

No database transaction is ever held open across a call to the provider: a checkout is committed before its
payment is created (so that its key ``checkout:<id>`` exists and a timed-out create can be repeated with it),
and the provider's answer is applied in a short transaction of its own under the checkout's row lock.

However the outcome reaches us — the provider's notice, the worker's check, both at once — it goes through
``apply_gateway_payment``, which locks the checkout and credits through ``do_receive_payment`` with the
provider's payment id: the checkout's lock serialises the callers and the payment's unique
``(channel, external_id)`` is the backstop, so the money is credited once. Only the provider's own answer to
our authenticated call is acted on, never the content of a notice (YooKassa's notices are unsigned).
"""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from abonent.billing.actions.common import _positive_amount
from abonent.core import audit, clock, events
from abonent.core.money import format_money, quantize
from abonent.staff.permissions import Perm
from abonent.subscribers.models import SubscriberStatus

from .. import gateways
from ..gateways import GatewayError, GatewayPayment
from ..models import (
    Checkout,
    CheckoutStatus,
    PaymentMethod,
)
from .common import check
from .intake import do_receive_payment
from .methods import do_link_method

logger = logging.getLogger(__name__)


METHOD_TYPES = ("bank_card", "sbp")
# YooKassa keeps an Idempotence-Key for 24 hours: after that a repeated create would be a new payment, so a checkout
# whose create call was never answered is not created again past this age (a notice or the metadata still find
# it if the payment did exist).
CREATE_RETRY_WINDOW = dt.timedelta(hours=23)


def mark_of(checkout_id: int) -> str:
    """What our own payments carry in the provider's metadata, to find their checkout (before we know the
    provider's id: a create call that timed out)."""
    return gateways.our_key("checkout", checkout_id)


class ForeignPayment(GatewayError):
    """The provider's payment is not this checkout's (another id, or not our mark in its metadata)."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False, code="foreign_payment")


# --- Starting a checkout ---------------------------------------------------------------------------------------


def do_start_checkout(
    subscriber,
    *,
    amount,
    method_type: str | None,
    save_method: bool,
    consent_text: str,
    return_url: str,
    key: str,
    acting_user,
    provider: str = "yookassa",
    consent_source: str = "api",
) -> Checkout:
    """Start an online payment of ``amount`` to ``subscriber``'s account and return its checkout, with the page
    (or SBP QR data) the payer confirms on.

    ``key`` makes a retried request return the first checkout (a different request with the same key is refused
    with ``idempotency_key_reused``). The checkout is committed before the gateway is asked; a gateway that does
    not answer leaves it pending without a provider id, and the worker repeats the create with the same key (the
    provider answers with the payment it made, never a second one). Checked: PAYMENT_TAKE and the branch; an
    amount within the limit; the method type; consent when the method is to be saved; an open account.
    """
    check(acting_user, Perm.PAYMENT_TAKE, subscriber)
    try:
        gateway = gateways.get(provider)
    except GatewayError:
        raise ValidationError(
            _("Online payments are not set up (no gateway is configured)."), code="gateway_not_configured"
        ) from None
    amount = _positive_amount(amount)
    limit = quantize(settings.ABONENT_ONLINE_PAYMENT_MAX)
    if amount > limit:
        raise ValidationError(
            {
                "amount": ValidationError(
                    _("An online payment is at most %(limit)s.") % {"limit": format_money(limit)},
                    code="amount_too_large",
                )
            }
        )
    method_type = method_type or ""
    if method_type not in ("", *METHOD_TYPES):
        raise ValidationError(
            {"method_type": ValidationError(_("Choose a bank card or SBP."), code="method_type_invalid")}
        )
    consent_text = (consent_text or "").strip()
    if save_method and not consent_text:
        raise ValidationError(
            {
                "consent_text": ValidationError(
                    _("Saving the method for autopay needs the consent text the subscriber agreed to."),
                    code="consent_required",
                )
            }
        )
    return_url = (return_url or settings.ABONENT_YOOKASSA_RETURN_URL or "").strip()
    if method_type != "sbp":
        _check_return_url(return_url)
    if subscriber.status == SubscriberStatus.CLOSED:
        raise ValidationError(_("The subscriber's account is closed."), code="subscriber_closed")
    key = (key or "").strip()
    if not key or len(key) > 200:
        raise ValidationError({"key": ValidationError(_("An idempotency key is required."), code="required")})

    wanted = {"subscriber_id": subscriber.pk, "amount": amount, "method_type": method_type, "save_method": save_method}
    existing = Checkout.objects.filter(key=key).first()
    if existing is not None:
        return _same_checkout(existing, wanted)
    now = clock.now()
    try:
        with transaction.atomic():
            checkout = Checkout.objects.create(
                subscriber=subscriber,
                provider=provider,
                key=key,
                amount=amount,
                method_type=method_type,
                return_url=return_url,
                save_method=save_method,
                consent_text=consent_text if save_method else "",
                consented_at=now if save_method else None,
                consent_source=consent_source[:20] if save_method else "",
                created_by=acting_user if getattr(acting_user, "pk", None) else None,
                created_at=now,
            )
            audit.record(
                actor=acting_user,
                action="payments.checkout_started",
                obj=checkout,
                subscriber_id=subscriber.pk,
                after={"amount": amount, "provider": provider, "method_type": method_type, "save_method": save_method},
            )
    except IntegrityError:
        existing = Checkout.objects.filter(key=key).first()
        if existing is None:
            raise
        return _same_checkout(existing, wanted)
    _create_at_provider(checkout, gateway)
    return Checkout.objects.get(pk=checkout.pk)


def _check_return_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise ValidationError(
            {
                "return_url": ValidationError(
                    _("Give the address the payer returns to after paying (http or https)."), code="invalid"
                )
            }
        )


def _same_checkout(existing: Checkout, wanted: dict) -> Checkout:
    if any(getattr(existing, name) != value for name, value in wanted.items()):
        raise ValidationError(_("This key was used for another payment."), code="idempotency_key_reused")
    return existing


def _create_at_provider(checkout: Checkout, gateway) -> None:
    """Ask the gateway for the checkout's payment, with the checkout's own key: the first time, or again after a
    create call that was not answered (the same key gets the same payment back)."""
    try:
        found = gateway.create_payment(
            amount=checkout.amount,
            description=_("Top-up of account %(account)s") % {"account": checkout.subscriber.account_number},
            key=checkout.idempotence_key,
            return_url=checkout.return_url,
            method_type=checkout.method_type or None,
            save_method=checkout.save_method,
            metadata={"abonent": mark_of(checkout.pk), "account": checkout.subscriber.account_number},
        )
    except GatewayError as exc:
        if exc.retryable:
            # Unknown outcome: the worker repeats the create with the same key, or the notice tells.
            Checkout.objects.filter(pk=checkout.pk).update(synced_at=clock.now(), failure=str(exc)[:500])
            logger.warning("checkout %s: the create call failed, to be repeated: %s", checkout.pk, exc)
            return
        _fail(checkout, code=exc.code or "refused", message=str(exc))
        return
    try:
        apply_gateway_payment(checkout, found)
    except ForeignPayment as exc:
        # The key answered with a payment that is not this checkout's: never credit it here, and say so.
        logger.error("checkout %s: %s", checkout.pk, exc)
        _fail(checkout, code=exc.code, message=str(exc))


@transaction.atomic
def _fail(checkout: Checkout, *, code: str, message: str) -> Checkout:
    checkout = Checkout.objects.select_for_update().get(pk=checkout.pk)
    if checkout.status != CheckoutStatus.PENDING:
        return checkout
    checkout.status = CheckoutStatus.FAILED
    checkout.failure_code = code[:60]
    checkout.failure = message[:500]
    checkout.finished_at = checkout.synced_at = clock.now()
    checkout.save(update_fields=["status", "failure_code", "failure", "finished_at", "synced_at"])
    audit.record(
        actor=None,
        action="payments.checkout_failed",
        obj=checkout,
        subscriber_id=checkout.subscriber_id,
        after={"code": checkout.failure_code, "failure": checkout.failure},
    )
    events.emit("payments.checkout_finished", checkout_id=checkout.pk)
    return checkout


# --- Learning the outcome --------------------------------------------------------------------------------------


def do_sync_checkout(checkout: Checkout) -> Checkout:
    """Ask the gateway what became of a checkout and act on its answer (credit once, or mark it failed).

    A checkout whose create call was never answered is created again with the same key. Raises ``GatewayError``
    when the gateway could not be asked (the worker asks again later).
    """
    checkout = Checkout.objects.select_related("subscriber").get(pk=checkout.pk)
    gateway = gateways.get(checkout.provider)
    if not checkout.provider_payment_id:
        if checkout.status != CheckoutStatus.PENDING:
            return checkout
        if clock.now() - checkout.created_at > CREATE_RETRY_WINDOW:
            return _fail(
                checkout, code="create_unconfirmed", message=_("The gateway never confirmed the payment was created.")
            )
        _create_at_provider(checkout, gateway)
        return Checkout.objects.get(pk=checkout.pk)
    try:
        found = gateway.get_payment(checkout.provider_payment_id)
    except GatewayError:
        Checkout.objects.filter(pk=checkout.pk).update(synced_at=clock.now())
        raise
    return apply_gateway_payment(checkout, found)


@transaction.atomic
def apply_gateway_payment(checkout: Checkout, found: GatewayPayment) -> Checkout:
    """Act on the provider's state of the checkout's payment, under the checkout's lock. Money the provider
    took is credited whatever our checkout says (pending, or failed after a lost create); a cancellation never
    undoes a credit (a succeeded payment cannot be cancelled at YooKassa: it is refunded)."""
    checkout = Checkout.objects.select_for_update().get(pk=checkout.pk)
    if checkout.provider_payment_id and checkout.provider_payment_id != found.id:
        raise ForeignPayment(f"checkout {checkout.pk} is payment {checkout.provider_payment_id}, not {found.id}")
    if found.metadata.get("abonent") != mark_of(checkout.pk):
        raise ForeignPayment(f"payment {found.id} does not carry checkout {checkout.pk}'s mark")
    if found.currency and found.currency != settings.ABONENT_CURRENCY:
        # The provider confirmed an amount of something else: never credited as ours; staff see the checkout.
        return _refuse(checkout, found, "currency_mismatch", _("Paid in %(currency)s, not %(ours)s: not credited."))
    if quantize(found.amount) != checkout.amount:
        # Not the payment this checkout asked for (one-stage payments keep their amount): never credited to it.
        raise ForeignPayment(f"payment {found.id} is for {found.amount}, checkout {checkout.pk} for {checkout.amount}")
    now = clock.now()
    changed = ["provider_payment_id", "provider_status", "synced_at"]
    checkout.provider_payment_id = found.id
    checkout.provider_status = found.status[:30]
    checkout.synced_at = now
    if found.confirmation_url and not checkout.confirmation_url:
        checkout.confirmation_url = found.confirmation_url[:2000]
        changed.append("confirmation_url")
    if found.confirmation_data and not checkout.qr_payload:
        checkout.qr_payload = found.confirmation_data
        changed.append("qr_payload")
    finished = False
    if found.status == "succeeded" and checkout.payment_id is None:
        intake = do_receive_payment(
            channel=checkout.provider,
            external_id=found.id,
            amount=found.amount,
            method=PaymentMethod.ONLINE,
            subscriber=checkout.subscriber,
            received_at=_moment(found.captured_at) or now,
            details={
                "checkout_id": checkout.pk,
                "method_type": found.method_type,
                "method_title": found.method_title,
            },
        )
        checkout.payment = intake.payment
        checkout.status = CheckoutStatus.SUCCEEDED
        checkout.failure_code = checkout.failure = ""
        checkout.finished_at = now
        changed += ["payment", "status", "failure_code", "failure", "finished_at"]
        finished = True
        if found.method_saved and found.method_id and checkout.save_method:
            _link_method(checkout, found)
    elif found.status == "canceled" and checkout.status == CheckoutStatus.PENDING:
        checkout.status = CheckoutStatus.FAILED
        checkout.failure_code = (found.decline_code or "canceled")[:60]
        checkout.failure = _("Declined: %(reason)s") % {"reason": found.decline_code or "canceled"}
        checkout.finished_at = now
        changed += ["status", "failure_code", "failure", "finished_at"]
        finished = True
    checkout.save(update_fields=changed)
    if finished:
        audit.record(
            actor=None,
            action=f"payments.checkout_{checkout.status}",
            obj=checkout,
            subscriber_id=checkout.subscriber_id,
            after={"provider_payment_id": found.id, "amount": found.amount, "code": checkout.failure_code},
        )
        events.emit("payments.checkout_finished", checkout_id=checkout.pk)
    return checkout


def _refuse(checkout: Checkout, found: GatewayPayment, code: str, message: str) -> Checkout:
    """The checkout's own payment that we will not credit: failed with ``code`` for staff (under the lock the
    caller holds), logged and audited; nothing reaches the balance."""
    logger.error("checkout %s: payment %s refused: %s %s", checkout.pk, found.id, found.amount, found.currency)
    if checkout.payment_id is not None:
        return checkout
    checkout.provider_payment_id = found.id
    checkout.provider_status = found.status[:30]
    checkout.status = CheckoutStatus.FAILED
    checkout.failure_code = code[:60]
    checkout.failure = (message % {"currency": found.currency, "ours": settings.ABONENT_CURRENCY})[:500]
    checkout.finished_at = checkout.synced_at = clock.now()
    checkout.save(
        update_fields=[
            "provider_payment_id",
            "provider_status",
            "status",
            "failure_code",
            "failure",
            "finished_at",
            "synced_at",
        ]
    )
    audit.record(
        actor=None,
        action="payments.checkout_failed",
        obj=checkout,
        subscriber_id=checkout.subscriber_id,
        after={"code": checkout.failure_code, "amount": found.amount, "currency": found.currency},
    )
    events.emit("payments.checkout_finished", checkout_id=checkout.pk)
    return checkout


def _link_method(checkout: Checkout, found: GatewayPayment) -> None:
    # A method that cannot be linked (saved by another subscriber) must not stop the money being credited.
    try:
        with transaction.atomic():
            do_link_method(
                checkout.subscriber,
                provider=checkout.provider,
                method_id=found.method_id,
                method_type=found.method_type,
                title=found.method_title,
                consent_text=checkout.consent_text,
                consented_at=checkout.consented_at,
                consent_source=checkout.consent_source or "api",
            )
    except ValidationError as exc:
        logger.warning("checkout %s: the saved method was not linked: %s", checkout.pk, exc)


def _moment(text: str) -> dt.datetime | None:
    try:
        moment = parse_datetime(text) if text else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def pending_checkouts_due(limit: int = 100):
    """Checkouts still pending and not asked about for ``ABONENT_GATEWAY_SYNC_AFTER_MINUTES``, oldest first."""
    before = clock.now() - dt.timedelta(minutes=settings.ABONENT_GATEWAY_SYNC_AFTER_MINUTES)
    return list(
        Checkout.objects.filter(status=CheckoutStatus.PENDING, created_at__lte=before)
        .exclude(synced_at__gt=before)
        .order_by("created_at")[:limit]
    )


def sync_pending_checkouts(limit: int = 100) -> dict:
    """The worker's sweep: checkouts whose notice never came (or whose create call timed out) are asked about."""
    done = {"checked": 0, "succeeded": 0, "failed": 0, "errors": 0}
    for checkout in pending_checkouts_due(limit):
        done["checked"] += 1
        try:
            checkout = do_sync_checkout(checkout)
        except (GatewayError, DatabaseError) as exc:
            done["errors"] += 1
            logger.warning("checkout %s could not be checked: %s", checkout.pk, exc)
            continue
        except Exception:
            # One checkout the intake refuses (a bug, an unusable answer) must not stop the sweep of the others.
            done["errors"] += 1
            logger.exception("checkout %s could not be settled", checkout.pk)
            continue
        if checkout.status in (CheckoutStatus.SUCCEEDED, CheckoutStatus.FAILED):
            done[checkout.status] += 1
    return done
