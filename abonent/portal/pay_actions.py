"""What the Pay section does on the subscriber's behalf, shared by its pages and the app's API: start an online
payment (keyed so a double submit is one checkout), and turn autopay on with the consent the subscriber gave.

The payments app's actions do the work (``acting_user=None``: the subscriber; the audit log names them through the
portal's middleware). Nothing here holds a transaction across a call to the gateway.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from abonent.core import audit, clock
from abonent.payments.actions import do_enable_autopay, do_start_checkout
from abonent.payments.models import AutopayPlan, Checkout

from .pay_data import PROVIDER, checkout_key


class TooManyCheckouts(Exception):
    """The subscriber started ``ABONENT_PORTAL_CHECKOUTS_PER_HOUR`` online payments in the last hour: no new one
    now (the page says so, the API answers 429 ``too_many_requests``). A card tester with a stolen token would
    otherwise use the portal as a free front for the shop's merchant account, and the gateway's own limits would
    then hit every subscriber's payments."""

    code = "too_many_requests"

    def __init__(self, per_hour: int):
        self.message = ngettext(
            "You have started %(count)d online payment in the last hour, the most allowed. Finish or wait for one "
            "of them, or try again later.",
            "You have started %(count)d online payments in the last hour, the most allowed. Finish or wait for "
            "one of them, or try again later.",
            per_hour,
        ) % {"count": per_hour}
        super().__init__(self.message)


def check_checkout_allowance(subscriber, key: str) -> None:
    """Refuse a new online payment past the hourly allowance; a retry of an existing key (the same checkout) is
    not a new one and always passes."""
    if Checkout.objects.filter(key=key).exists():
        return
    per_hour = settings.ABONENT_PORTAL_CHECKOUTS_PER_HOUR
    since = clock.now() - dt.timedelta(hours=1)
    started = Checkout.objects.filter(
        subscriber_id=subscriber.pk, key__startswith=checkout_key(subscriber, ""), created_at__gte=since
    ).count()
    if started >= per_hour:
        raise TooManyCheckouts(per_hour)


def key_digest(one_time_key: str) -> str:
    """The form's one-time key or the app's Idempotency-Key, hashed: free text of any length becomes the fixed
    part of the checkout's key (and of the return address, which the gateway sees)."""
    return hashlib.sha256(one_time_key.encode("utf-8", "surrogatepass")).hexdigest()


def return_url_for(request, ref: str) -> str:
    """Where the gateway sends the payer back: the portal's page for this key, which finds the checkout. On the
    public address when one is set (``ABONENT_PUBLIC_URL``), else on the address the request came to."""
    path = reverse("portal:pay_return", kwargs={"ref": ref})
    base = settings.ABONENT_PUBLIC_URL
    return f"{base}{path}" if base else request.build_absolute_uri(path)


def start_payment(
    request,
    *,
    amount,
    method_type: str | None,
    save_method: bool,
    consent_text: str,
    one_time_key: str,
    consent_source: str,
    return_url: str = "",
) -> Checkout:
    """Start (or find again) the subscriber's online payment for ``one_time_key``.

    The checkout's key is ``portal:<subscriber>:<sha256 of the key>``: the same key again is the same checkout
    (a double submit, back and resubmit, an app's retry), another subscriber's same key another checkout. The same
    key with another amount or method raises ``ValidationError`` ``idempotency_key_reused``. The gateway is asked
    outside any transaction (``do_start_checkout`` commits the checkout first). Past the hourly allowance a new
    key raises ``TooManyCheckouts``.
    """
    subscriber = request.subscriber
    ref = key_digest(one_time_key)
    check_checkout_allowance(subscriber, checkout_key(subscriber, ref))
    return do_start_checkout(
        subscriber,
        amount=amount,
        method_type=method_type,
        save_method=save_method,
        consent_text=consent_text if save_method else "",
        return_url=return_url or return_url_for(request, ref),
        key=checkout_key(subscriber, ref),
        acting_user=None,
        provider=PROVIDER,
        consent_source=consent_source,
    )


def same_wording(sent: str, shown: str) -> bool:
    """Whether the consent an app sends back is the wording the server shows (spacing aside)."""
    return " ".join((sent or "").split()) == " ".join((shown or "").split())


def consent_mismatch(field: str) -> ValidationError:
    message = _("The consent sent is not the wording this service shows. Show the current wording and ask again.")
    return ValidationError({field: ValidationError(message, code="consent_mismatch")})


@transaction.atomic
def do_enable_autopay_with_consent(
    subscriber, *, consent_text: str, consent_source: str, method, shown_text: str | None = None, **plan_settings
) -> AutopayPlan:
    """Turn autopay on (or change it) as the subscriber asked, only with their explicit consent: the wording they
    were shown is stored in the audit log with the settings it covers, in the same transaction as the change.

    ``shown_text``: the wording the server shows (``pay_data.autopay_consent_text``), which an app's
    ``consent_text`` must be (``consent_mismatch``, after the settings' own refusals): a consent the server never
    showed is not stored as given. ``plan_settings`` are ``do_enable_autopay``'s (mode, debit_day, amount_mode,
    fixed_amount, min_amount, max_amount); its refusals come through as they are.
    """
    consent_text = (consent_text or "").strip()
    if not consent_text:
        raise ValidationError(
            {"consent": ValidationError(_("Autopay is turned on only with your consent."), code="consent_required")}
        )
    plan = do_enable_autopay(subscriber, method=method, acting_user=None, **plan_settings)
    if shown_text is not None:
        if not same_wording(consent_text, shown_text):
            raise consent_mismatch("consent")  # rolls the settings back with this transaction
        consent_text = shown_text
    audit.record(
        actor=None,
        action="portal.autopay_consent",
        obj=plan,
        subscriber_id=subscriber.pk,
        after={
            "consent_text": consent_text,
            "consent_source": consent_source,
            "method": plan.method_id,
            "mode": plan.mode,
            "debit_day": plan.debit_day,
            "amount_mode": plan.amount_mode,
            "fixed_amount": plan.fixed_amount,
            "max_amount": plan.max_amount,
        },
    )
    return plan
