"""Saved payment methods: linked after a gateway payment the subscriber agreed to save, unlinked at will."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm

from ..checks import moment_of
from ..models import SavedMethod
from .common import check


def do_link_method(
    subscriber,
    *,
    provider: str,
    method_id: str,
    method_type: str,
    title: str,
    consent_text: str,
    consented_at,
    consent_source: str,
) -> SavedMethod:
    """Record a method the gateway saved, with the consent given when it was saved (the checkout's). Idempotent:
    the same method again returns the row (reactivated, with the new consent, if it was unlinked and the
    subscriber saved it anew). A method of another subscriber is refused."""
    if not (consent_text or "").strip():
        raise ValidationError(
            {"consent": ValidationError(_("Autopay needs the subscriber's consent."), code="consent_required")}
        )
    moment_of(consented_at, "consented_at")
    if consented_at is None:
        raise ValidationError({"consented_at": ValidationError(_("Say when the consent was given."), code="required")})
    method_id = (method_id or "").strip()
    if not method_id or len(method_id) > 100 or not method_id.isprintable():
        raise ValidationError(
            {"method_id": ValidationError(_("The gateway's method id is not valid."), code="method_id_invalid")}
        )
    try:
        with transaction.atomic():
            return _link(
                subscriber,
                provider=provider,
                method_id=method_id,
                method_type=method_type,
                title=title,
                consent_text=consent_text,
                consented_at=consented_at,
                consent_source=consent_source,
            )
    except IntegrityError:
        # Linked at the same moment by another request: the same answer as if it had come first.
        existing = SavedMethod.objects.get(provider=provider, method_id=method_id)
        _own(existing, subscriber)
        return existing


def _own(method: SavedMethod, subscriber) -> None:
    if method.subscriber_id != subscriber.pk:
        raise ValidationError(_("This payment method belongs to another subscriber."), code="method_foreign")


def _link(subscriber, *, provider, method_id, method_type, title, consent_text, consented_at, consent_source):
    existing = SavedMethod.objects.select_for_update().filter(provider=provider, method_id=method_id).first()
    if existing is not None:
        _own(existing, subscriber)
        if existing.active:
            return existing
        existing.active = True
        existing.unlinked_at = None
        existing.consent_text, existing.consented_at = consent_text, consented_at
        existing.consent_source = consent_source[:20]
        existing.save(update_fields=["active", "unlinked_at", "consent_text", "consented_at", "consent_source"])
        method = existing
    else:
        method = SavedMethod.objects.create(
            subscriber=subscriber,
            provider=provider,
            method_id=method_id,
            method_type=(method_type or "")[:40],
            title=(title or "")[:100],
            consent_text=consent_text,
            consented_at=consented_at,
            consent_source=consent_source[:20],
            created_at=clock.now(),
        )
    audit.record(
        actor=None,
        action="payments.method_linked",
        obj=method,
        subscriber_id=subscriber.pk,
        after={
            "provider": provider,
            "title": method.title,
            "consent_source": consent_source,
            "consented_at": consented_at,
        },
    )
    events.emit("payments.method_linked", method_id=method.pk)
    return method


@transaction.atomic
def do_unlink_method(method: SavedMethod, *, acting_user, reason: str = "") -> SavedMethod:
    """Stop using a saved method (the subscriber asked, or the gateway reported it revoked). ``acting_user``
    None: the subscriber themselves or the system; staff need the subscription permission."""
    # Its own row only: a lock joined to the subscriber held the subscriber row too (closing, payments wait on it).
    method = SavedMethod.objects.select_for_update(of=("self",)).select_related("subscriber").get(pk=method.pk)
    check(acting_user, Perm.SUBSCRIPTION_MANAGE, method.subscriber)
    if not method.active:
        return method
    method.active = False
    method.unlinked_at = clock.now()
    method.unlinked_by = acting_user if getattr(acting_user, "pk", None) else None
    method.unlink_reason = (reason or "").strip()[:200]
    method.save(update_fields=["active", "unlinked_at", "unlinked_by", "unlink_reason"])
    audit.record(
        actor=acting_user,
        action="payments.method_unlinked",
        obj=method,
        subscriber_id=method.subscriber_id,
        reason=method.unlink_reason,
    )
    events.emit("payments.method_unlinked", method_id=method.pk)
    return method
