"""A bulk action on subscribers, confirmed once, and each subscriber of its set with what happened to it."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.subscribers.models import Subscriber


class BulkKind(models.TextChoices):
    GROUP_ADD = "group_add", _("Add to a group")
    GROUP_REMOVE = "group_remove", _("Remove from a group")
    MESSAGE = "message", _("Send a message")
    PLAN_CHANGE = "plan_change", _("Change the plan at the period's end")


class BulkStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class SkipReason(models.TextChoices):
    """Why a subscriber of the set was left alone: decided by the preview and again, on the same rules, by the run."""

    CLOSED = "closed", _("The account is closed")
    ALREADY_MEMBER = "already_member", _("Already in the group")
    NOT_MEMBER = "not_member", _("Not in the group")
    NO_SUBSCRIPTION = "no_subscription", _("No subscription to the plan's service")
    NOT_ACTIVE = "not_active", _("The subscription is frozen")
    SAME_PLAN = "same_plan", _("Already on this plan")
    ALREADY_SCHEDULED = "already_scheduled", _("This change is scheduled already")
    OTHER_SCHEDULED = "other_scheduled", _("Another plan change is scheduled")
    BILLING_PENDING = "billing_pending", _("A billing run is pending: periods are not charged yet")
    NOT_OFFERED = "not_offered", _("The plan is not offered to them")
    NO_ADDRESS = "no_address", _("No address on the channel, or the channel turned off")
    NO_CONSENT = "no_consent", _("No consent to advertising")
    # At the run: the action refused (a rule the preview cannot see, or the subscriber changed since).
    REFUSED = "refused", _("Refused")


class BulkAction(models.Model):
    """One confirmed bulk action over the subscribers of ``items``, fixed when it was confirmed.

    ``form_key`` is the one-time key of the confirmation form: unique, so a double click or a resubmitted page makes
    one action. ``params`` holds what the action needs (the group, the plan, the message and its channel), ``query``
    the subscriber list's filter it was taken from ("" for rows ticked by hand). ``preview`` is what the operator
    was shown: how many it would touch and how many it would skip, by reason.
    """

    kind = models.CharField(_("action"), max_length=20, choices=BulkKind.choices)
    status = models.CharField(_("status"), max_length=10, choices=BulkStatus.choices, default=BulkStatus.QUEUED)
    form_key = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    query = models.CharField(_("filter"), max_length=2000, blank=True)
    preview = models.JSONField(default=dict)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("confirmed"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The bulk message a "send a message" action queued (the notifications app sends it at its rate).
    bulk_message = models.ForeignKey(
        "notifications.BulkMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("bulk action")
        verbose_name_plural = _("bulk actions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["form_key"], name="bulk_action_form_key_uniq"),
            models.CheckConstraint(condition=~Q(form_key=""), name="bulk_action_form_key_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class BulkPreview(models.Model):
    """What one preview showed, kept on the server under the key of its confirmation form: the key is issued here,
    bound to its user, and the confirmation acts on ``subscriber_ids`` (the set the preview counted) only, after
    the permissions and rules are checked again (which may only shrink it). ``fingerprint`` is of the parameters
    and selection the preview was of; ``preview`` the counts shown."""

    form_key = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()
    fingerprint = models.CharField(max_length=64)
    subscriber_ids = models.JSONField(default=list)
    preview = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.created_by_id}: {self.form_key}"


class ItemOutcome(models.TextChoices):
    PENDING = "pending", _("Waiting")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class BulkActionItem(models.Model):
    """A subscriber of an action's set and what the run did with it (``reason``: a ``SkipReason`` when skipped)."""

    action = models.ForeignKey(BulkAction, on_delete=models.CASCADE, related_name="items")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+", db_index=False)
    outcome = models.CharField(max_length=10, choices=ItemOutcome.choices, default=ItemOutcome.PENDING)
    reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action", "subscriber"], name="bulk_item_once_per_action"),
        ]

    def __str__(self) -> str:
        return f"{self.action_id}: {self.subscriber_id} {self.outcome}"
