"""What the Pay section does on the subscriber's behalf, shared by its pages and the app's API: start an online
payment (keyed so a double submit is one checkout), and turn autopay on with the consent the subscriber gave.

The payments app's actions do the work (``acting_user=None``: the subscriber; the audit log names them through the
portal's middleware). Nothing here holds a transaction across a call to the gateway.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from abonent.core import audit
from abonent.payments.actions import do_enable_autopay, do_start_checkout
from abonent.payments.models import AutopayPlan, Checkout

from .pay_data import PROVIDER, checkout_key


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
    outside any transaction (``do_start_checkout`` commits the checkout first).
    """
    subscriber = request.subscriber
    ref = key_digest(one_time_key)
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


@transaction.atomic
def do_enable_autopay_with_consent(
    subscriber, *, consent_text: str, consent_source: str, method, **plan_settings
) -> AutopayPlan:
    """Turn autopay on (or change it) as the subscriber asked, only with their explicit consent: the wording they
    were shown is stored in the audit log with the settings it covers, in the same transaction as the change.

    ``plan_settings`` are ``do_enable_autopay``'s (mode, debit_day, amount_mode, fixed_amount, min_amount,
    max_amount); its refusals come through as they are.
    """
    consent_text = (consent_text or "").strip()
    if not consent_text:
        raise ValidationError(
            {"consent": ValidationError(_("Autopay is turned on only with your consent."), code="consent_required")}
        )
    plan = do_enable_autopay(subscriber, method=method, acting_user=None, **plan_settings)
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
