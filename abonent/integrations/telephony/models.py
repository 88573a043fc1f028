"""Telephony's tables: operators' extensions, calls (one row per PBX call, whatever the number of events that told
us about it), the webhook's received events (idempotency) and the screen-pop outbox read by the web processes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from abonent.subscribers.models import Subscriber


class Extension(models.Model):
    """An operator's phone extension: the number the PBX dials to ring their desk, hence whose screen pops."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("staff user"), on_delete=models.CASCADE, related_name="phone_extension"
    )
    number = models.CharField(_("extension"), max_length=20, unique=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("extension")
        verbose_name_plural = _("extensions")
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class CallDirection(models.TextChoices):
    INBOUND = "inbound", _("Incoming")
    OUTBOUND = "outbound", _("Outgoing")


class CallStatus(models.TextChoices):
    RINGING = "ringing", _("Ringing")
    ANSWERED = "answered", _("Answered")
    MISSED = "missed", _("Missed")
    BUSY = "busy", _("Busy")
    FAILED = "failed", _("Failed")


# Statuses of a finished call; a ``ringing`` call is still going on (or its end was never reported).
FINAL_STATUSES = frozenset({CallStatus.ANSWERED, CallStatus.MISSED, CallStatus.BUSY, CallStatus.FAILED})


class Call(models.Model):
    """One phone call as the PBX saw it, from the first event to the CDR. ``source`` is ``ami`` or the webhook's
    provider name; ``(source, pbx_call_id)`` is unique, so a replayed event updates the same row."""

    source = models.CharField(_("source"), max_length=30)
    # Asterisk: the Linkedid (the caller's channel Uniqueid, shared by every leg); a cloud PBX: its call id.
    pbx_call_id = models.CharField(_("PBX call id"), max_length=100)
    direction = models.CharField(
        _("direction"), max_length=10, choices=CallDirection.choices, default=CallDirection.INBOUND
    )
    caller_number = models.CharField(_("caller"), max_length=40, blank=True)
    # The caller's number in E.164 when it parses as one, matched to subscribers' phones; empty otherwise.
    caller_e164 = models.CharField(max_length=20, blank=True, db_index=True)
    called_number = models.CharField(_("called number"), max_length=40, blank=True)
    # The extension that answered, else the last one that rang.
    extension = models.CharField(_("extension"), max_length=20, blank=True)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
    )
    started_at = models.DateTimeField(_("started"))
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    # Talk time in seconds (the CDR's billable seconds): the handling time the KPIs average.
    duration_seconds = models.PositiveIntegerField(_("duration, s"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=CallStatus.choices, default=CallStatus.RINGING)
    # Relative to ABONENT_RECORDINGS_DIR; served only through the authorised view (views.recording).
    recording_file = models.CharField(_("recording"), max_length=255, blank=True)
    # Every subscriber whose phone is the caller's number (a shared family phone matches several).
    subscribers = models.ManyToManyField(Subscriber, verbose_name=_("subscribers"), blank=True, related_name="calls")
    ticket = models.ForeignKey(
        "helpdesk.Ticket",
        verbose_name=_("request"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
    )
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "pbx_call_id"], name="telephony_call_source_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["operator", "started_at"], name="telephony_call_operator_idx"),
            models.Index(fields=["started_at"], name="telephony_call_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.caller_number} → {self.extension or self.called_number}"


class WebhookEvent(models.Model):
    """One event a cloud PBX posted to /hooks/telephony/, kept so that its retry changes nothing: unique by
    ``(provider, call_id, event)``. Only the fields we act on are kept, not the whole body."""

    provider = models.CharField(max_length=30)
    call_id = models.CharField(max_length=100)
    event = models.CharField(max_length=20)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "call_id", "event"], name="telephony_webhook_event_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.call_id}:{self.event}"


class ScreenPop(models.Model):
    """A ring to pop on an operator's screen, written by the process that heard it (``abonent telephony`` or the
    webhook) and read by every web process (pushed by NOTIFY on PostgreSQL, polled on SQLite). Rows older than a
    few minutes are pruned: this is an outbox, not a history (that is ``Call``)."""

    extension = models.CharField(max_length=20)
    # What the web process filters per viewer (branch scope, permissions): see pops.build_payload. No key to the
    # call: the pop is written before the call's row, so that bookkeeping never delays a ring (asterisk.py).
    payload = models.JSONField()
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.extension}: {self.payload.get('pbx_call_id', '')}"
