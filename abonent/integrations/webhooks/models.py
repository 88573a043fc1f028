"""Outgoing webhooks to the ISP's CRM and the API tokens of each integration (docs/webhooks.md).

An ``Endpoint`` is one integration: where its events go, the secret they are signed with, which event types it
wants. A domain event becomes one ``WebhookEvent`` (its id derived from what happened, so a replayed domain event
is the same row) and one ``Delivery`` per subscribed endpoint, unique by ``(endpoint, event)``. Each try of a
delivery is an ``Attempt``.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    SUBSCRIBER_CREATED = "subscriber.created", _("Subscriber created")
    SUBSCRIBER_CHANGED = "subscriber.changed", _("Subscriber changed")
    PAYMENT_RECEIVED = "payment.received", _("Payment received")
    PLAN_CHANGED = "plan.changed", _("Plan changed")
    ACCESS_CHANGED = "access.changed", _("Access state changed")
    TICKET_CREATED = "ticket.created", _("Request created")
    TICKET_UPDATED = "ticket.updated", _("Request updated")


class Endpoint(models.Model):
    """One integration: a URL that receives the event types it subscribed to, signed with its own secret.

    The secret is kept encrypted (``core.secrets``, under ``ABONENT_FIELD_KEY``) because signing needs the clear
    text; it is shown once, when it is made."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    url = models.URLField(_("URL"), max_length=500)
    secret_encrypted = models.TextField(editable=False)
    event_types = models.JSONField(_("event types"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookEvent(models.Model):
    """One thing that happened, as the receivers see it: the envelope's ``id``, ``type``, ``created_at`` and
    ``data`` (ids and plain values read after the change committed). ``key`` names what happened
    (``payment.received:42``); the id is derived from it, so the same domain event handled twice is this row."""

    id = models.UUIDField(primary_key=True, editable=False)
    key = models.CharField(max_length=200, unique=True)
    type = models.CharField(_("type"), max_length=40, choices=EventType.choices)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(_("created"), db_index=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    @staticmethod
    def id_for(key: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"abonent:webhook:{key}")

    def envelope(self) -> dict:
        return {
            "id": str(self.id),
            "type": self.type,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class Delivery(models.Model):
    """One event owed to one endpoint. ``attempts`` counts the tries of the current round (a manual redelivery
    starts a new round); while a worker holds it, ``next_attempt_at`` is its lease and only that worker may record
    the outcome."""

    endpoint = models.ForeignKey(
        Endpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        WebhookEvent, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    round = models.PositiveSmallIntegerField(_("round"), default=1)
    next_attempt_at = models.DateTimeField(_("next attempt"))
    last_status_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    last_error = models.CharField(_("error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhooks_delivery_endpoint_event_uniq")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhooks_delivery_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="webhooks_delivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id}:{self.event_id}"


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    RETRY = "retry", _("Will retry")
    FAILED = "failed", _("Failed")


class Attempt(models.Model):
    """One POST of a delivery: what the receiver answered (or why there was no answer), and how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started"))
    duration_ms = models.PositiveIntegerField(_("duration, ms"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=AttemptOutcome.choices)
    status_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    # The first RESPONSE_EXCERPT bytes of the receiver's answer, for the log page (never the whole of it).
    response_excerpt = models.TextField(_("response"), blank=True)
    # The delivery's round it belongs to: 1 for the first, one more for each manual redelivery.
    round = models.PositiveSmallIntegerField(_("round"), default=1)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_attempt_number_uniq")]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number}"


class Scope(models.TextChoices):
    READ_ONLY = "read_only", _("Read only")
    SUBSCRIBERS = "subscribers", _("Subscribers")
    PAYMENTS = "payments", _("Payments")
    TICKETS = "tickets", _("Requests")


class IntegrationToken(models.Model):
    """An API token that speaks for one integration, limited to its scopes (``scopes.check_scopes``).

    The token itself is a staff ``ApiToken`` of a service account made for it (its role is the ceiling, the
    scopes narrow it further); this row marks it and says what it may reach."""

    token = models.OneToOneField(
        "staff.ApiToken", on_delete=models.CASCADE, primary_key=True, related_name="integration"
    )
    endpoint = models.ForeignKey(
        Endpoint, verbose_name=_("integration"), on_delete=models.PROTECT, related_name="tokens"
    )
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("integration token")
        verbose_name_plural = _("integration tokens")

    def __str__(self) -> str:
        return str(self.token_id)
