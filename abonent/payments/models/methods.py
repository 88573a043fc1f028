"""Payment methods a subscriber saved at a gateway for autopay, with the consent they gave."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.subscribers.models import Subscriber


class SavedMethod(models.Model):
    """A card or SBP account the gateway keeps for us (``method_id``), usable for charges without the
    subscriber present — only with their recorded consent (its text and moment), and until they unlink it."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="saved_methods")
    provider = models.CharField(_("gateway"), max_length=40)
    method_id = models.CharField(max_length=100)
    method_type = models.CharField(_("type"), max_length=40, blank=True)
    title = models.CharField(_("method"), max_length=100, blank=True)  # "Bank card *4444", "SBP"
    consent_text = models.TextField(_("consent"))
    consented_at = models.DateTimeField(_("consent given"))
    # Where the consent was given: the portal's checkbox, the API on the portal's behalf, staff on the phone.
    consent_source = models.CharField(_("consent given in"), max_length=20)
    active = models.BooleanField(_("active"), default=True)
    unlinked_at = models.DateTimeField(_("unlinked"), null=True, blank=True)
    unlinked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unlink_reason = models.CharField(_("why unlinked"), max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("saved payment method")
        verbose_name_plural = _("saved payment methods")
        constraints = [
            models.UniqueConstraint(fields=["provider", "method_id"], name="payments_method_uniq"),
            models.CheckConstraint(
                condition=Q(active=True) | Q(unlinked_at__isnull=False), name="payments_method_unlinked_at"
            ),
        ]
        indexes = [models.Index(fields=["subscriber"], condition=Q(active=True), name="payments_method_active_idx")]

    def __str__(self) -> str:
        return self.title or self.method_id
