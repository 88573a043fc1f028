"""Templates per event, channel and language; the outbox of messages with their delivery status; each
subscriber's channel preferences and Telegram chats; staff bulk messages."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.subscribers.models import Subscriber


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    TELEGRAM = "telegram", _("Telegram")


class Event(models.TextChoices):
    """What a message tells. Each has a set of placeholders its templates may use (``placeholders``)."""

    RUNOUT_SOON = "runout_soon", _("Balance runs out soon")
    RESTRICTED = "restricted", _("Access restricted for debt")
    SUSPENDED = "suspended", _("Access suspended for debt")
    RESTORED = "restored", _("Access restored")
    PAYMENT_RECEIVED = "payment_received", _("Payment received")
    AUTOPAY_REMINDER = "autopay_reminder", _("Autopay reminder")
    AUTOPAY_SUCCEEDED = "autopay_succeeded", _("Autopay succeeded")
    AUTOPAY_DECLINED = "autopay_declined", _("Autopay declined")
    AUTOPAY_RETRY_SCHEDULED = "autopay_retry_scheduled", _("Autopay declined, will retry")
    AUTOPAY_STOPPED = "autopay_stopped", _("Autopay stopped")
    METHOD_UNLINKED = "method_unlinked", _("Payment method unlinked")
    PROMISED_EXPIRING = "promised_expiring", _("Promised payment expires soon")
    FREEZE_ENDING = "freeze_ending", _("Freeze ends soon")
    PLAN_CHANGED = "plan_changed", _("Plan changed")
    DOCUMENT_ISSUED = "document_issued", _("Document issued")
    TICKET_UPDATED = "ticket_updated", _("Ticket updated")
    # A portal login code the subscriber asked for a moment ago: sent at once, quiet hours and channel
    # preferences notwithstanding, to the one channel chosen (portal.codes).
    LOGIN_CODE = "login_code", _("Portal login code")
    # A code the subscriber asked for to prove a new phone or e-mail in the portal's profile: sent like a login
    # code, but to the new address, which is not on the contract yet (portal.codes).
    CONTACT_CODE = "contact_code", _("Code to confirm a new contact")
    BULK = "bulk", _("Message from the provider")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")  # waiting for its time (quiet hours, throttle, backoff) or a worker
    SENT = "sent", _("Sent")  # the provider accepted it
    DELIVERED = "delivered", _("Delivered")  # the provider reported delivery (where it reports)
    FAILED = "failed", _("Failed")  # retries exhausted: final
    UNDELIVERABLE = "undeliverable", _("Undeliverable")  # the address cannot take it (bad number, bot blocked)
    SKIPPED = "skipped", _("Not sent")  # no address, channel off, no consent: recorded so the log says why
    CANCELLED = "cancelled", _("Cancelled")


FINAL_STATUSES = frozenset(
    {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.UNDELIVERABLE,
        MessageStatus.SKIPPED,
        MessageStatus.CANCELLED,
    }
)


class Template(models.Model):
    """A staff-edited template that replaces the built-in one (``templates_default``) for an event, channel and
    language. ``{placeholder}`` names are checked on save against the event's list."""

    event = models.CharField(_("event"), max_length=30, choices=Event.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=5, choices=settings.LANGUAGES)
    subject = models.CharField(_("subject"), max_length=200, blank=True)  # e-mail only
    body = models.TextField(_("text"), max_length=4000)
    is_active = models.BooleanField(_("in use"), default=True)
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["event", "channel", "language"]
        constraints = [
            models.UniqueConstraint(fields=["event", "channel", "language"], name="notifications_template_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.channel}/{self.language}"


class BulkStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class BulkMessage(models.Model):
    """A message from staff to an audience (a subscriber group, a branch, the subscribers of a NAS): expanded
    into one ``Message`` per subscriber and channel, released at ``per_minute`` at most."""

    audience = models.CharField(_("audience"), max_length=20)  # a key of ``audiences``: group, branch, nas…
    audience_id = models.BigIntegerField(_("audience id"))
    audience_label = models.CharField(max_length=200, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"), max_length=4000)
    marketing = models.BooleanField(_("advertising"), default=False)
    per_minute = models.PositiveIntegerField(_("messages per minute"), default=600)
    status = models.CharField(max_length=10, choices=BulkStatus.choices, default=BulkStatus.QUEUED)
    recipients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("bulk message")
        verbose_name_plural = _("bulk messages")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(per_minute__gte=1, per_minute__lte=100000), name="notifications_bulk_rate_range"
            )
        ]

    def __str__(self) -> str:
        return f"{self.audience}:{self.audience_id}"


class Message(models.Model):
    """One message to one address on one channel (the outbox row). Rendered when queued, so the log shows what
    was sent; unique by ``dedup_key`` (the caller's key and the channel), so a repeated notice is not sent twice.
    The worker claims due rows by pushing ``next_attempt_at`` out by a lease, as the CoA queue does."""

    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(_("event"), max_length=30, choices=Event.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    address = models.CharField(_("address"), max_length=254, blank=True)  # E.164 phone, e-mail, chat id
    language = models.CharField(max_length=5, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"))
    dedup_key = models.CharField(max_length=200, unique=True)
    marketing = models.BooleanField(default=False)
    bulk = models.ForeignKey(BulkMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    status = models.CharField(_("status"), max_length=14, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The provider's id of the message (SMS id, Telegram message_id, SMTP Message-ID).
    provider_id = models.CharField(max_length=100, blank=True)
    # Language-neutral code of the last error (``errors.MessageError``) and the provider's own words.
    error = models.CharField(max_length=40, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="queued"), name="notifications_msg_due"),
            models.Index(fields=["subscriber", "-created_at"], name="notifications_msg_subscriber"),
            models.Index(fields=["bulk", "status"], condition=Q(bulk__isnull=False), name="notifications_msg_bulk"),
        ]

    def __str__(self) -> str:
        return self.dedup_key


class Preference(models.Model):
    """How a subscriber wants to be reached. Without a row: every channel on, the installation's language,
    the branch's (or installation's) time zone and the default quiet hours."""

    subscriber = models.OneToOneField(
        Subscriber, on_delete=models.CASCADE, primary_key=True, related_name="notification_preference"
    )
    email = models.BooleanField(_("e-mail"), default=True)
    sms = models.BooleanField(_("SMS"), default=True)
    telegram = models.BooleanField(_("Telegram"), default=True)
    language = models.CharField(_("language"), max_length=5, choices=settings.LANGUAGES, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    # None: ABONENT_QUIET_HOURS. Equal values: no quiet hours.
    quiet_from = models.TimeField(_("quiet from"), null=True, blank=True)
    quiet_to = models.TimeField(_("quiet until"), null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("notification preferences")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.subscriber_id)


class TelegramChat(models.Model):
    """A Telegram chat linked to a subscriber through the bot's deep link (``/start <token>``). A chat that
    blocked the bot is kept with ``blocked_at`` and no longer written to."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="telegram_chats")
    chat_id = models.BigIntegerField()
    username = models.CharField(max_length=64, blank=True)
    linked_at = models.DateTimeField()
    blocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Telegram chat")
        verbose_name_plural = _("Telegram chats")
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "chat_id"], name="notifications_tgchat_uniq"),
        ]

    def __str__(self) -> str:
        return str(self.chat_id)


class TelegramLinkToken(models.Model):
    """A one-time token for ``https://t.me/<bot>?start=<token>``; only its SHA-256 is stored."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Telegram link token")
        verbose_name_plural = _("Telegram link tokens")

    def __str__(self) -> str:
        return f"{self.subscriber_id}"
