"""Online payments through a gateway: our checkouts, and every notice a provider sent us."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber

from .payment import Payment


class CheckoutStatus(models.TextChoices):
    # Started: the payer has a page (or a QR) to pay on, or the create call has not been confirmed yet.
    PENDING = "pending", _("Awaiting payment")
    SUCCEEDED = "succeeded", _("Paid")
    FAILED = "failed", _("Not paid")


class Checkout(models.Model):
    """One online payment attempt of a subscriber at a gateway: what we asked for and what became of it.

    ``key`` is the caller's idempotency key (an API client's Idempotency-Key, scoped to the user): a retried
    request finds the same checkout. The gateway is asked with *our* key ``checkout:<id>``, so a create call
    repeated after a timeout is the same payment at the provider. ``provider_payment_id`` is empty until the
    provider has answered the create call. ``payment`` is the payment it credited, exactly one, set when the
    provider confirms the money (whichever of the notice, the worker's check or the API saw it first).
    """

    subscriber = models.ForeignKey(
        Subscriber, verbose_name=_("subscriber"), on_delete=models.PROTECT, related_name="checkouts"
    )
    provider = models.CharField(_("gateway"), max_length=40)
    key = models.CharField(max_length=200)
    amount = MoneyField(_("amount"))
    provider_payment_id = models.CharField(_("gateway's payment id"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=CheckoutStatus.choices, default="pending")
    # The provider's status as last seen (pending, waiting_for_capture, succeeded, canceled).
    provider_status = models.CharField(_("gateway's status"), max_length=30, blank=True)
    # bank_card, sbp, or empty: the provider's page offers every method the shop has.
    method_type = models.CharField(_("method asked"), max_length=40, blank=True)
    return_url = models.CharField(max_length=2000, blank=True)
    confirmation_url = models.CharField(_("payment page"), max_length=2000, blank=True)
    # SBP: the QR code's content (an NSPK link the portal draws, or opens on a phone).
    qr_payload = models.TextField(_("QR code data"), blank=True)
    # Save the method for autopay: only with the subscriber's consent, kept as the text they were shown and when.
    save_method = models.BooleanField(_("save the method"), default=False)
    consent_text = models.TextField(_("consent"), blank=True)
    consented_at = models.DateTimeField(_("consent given"), null=True, blank=True)
    consent_source = models.CharField(_("consent given in"), max_length=20, blank=True)
    failure_code = models.CharField(_("why not paid"), max_length=60, blank=True)
    failure = models.CharField(_("details"), max_length=500, blank=True)
    payment = models.OneToOneField(
        Payment,
        verbose_name=_("payment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="checkout",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("started"))
    # The last time we asked the provider (the worker asks again only some minutes later).
    synced_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("online payment")
        verbose_name_plural = _("online payments")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["subscriber", "-created_at"], name="payments_checkout_sub_idx"),
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="payments_checkout_pending_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="payments_checkout_key_uniq"),
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"],
                condition=~Q(provider_payment_id=""),
                name="payments_checkout_provider_id_uniq",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_checkout_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(save_method=False) | (~Q(consent_text="") & Q(consented_at__isnull=False)),
                name="payments_checkout_save_needs_consent",
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(payment__isnull=False), name="payments_checkout_paid_has_payment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_payment_id or f'checkout {self.pk}'}"

    @property
    def idempotence_key(self) -> str:
        """Our key at the provider for creating this checkout's payment (YooKassa: at most 64 characters)."""
        from ..gateways import our_key

        return our_key("checkout", self.pk)


class EventOutcome(models.TextChoices):
    RECEIVED = "received", _("Received")  # stored, being handled (or the handler died: redelivery retries it)
    HANDLED = "handled", _("Handled")
    IGNORED = "ignored", _("Nothing to do")
    REJECTED = "rejected", _("Rejected")  # not authentic or not a notice: answered 4xx
    FAILED = "failed", _("Failed")  # we could not handle it now: answered 5xx so the provider redelivers


class ProviderEvent(models.Model):
    """One notice a gateway sent us, stored before it is handled: ``(provider, event_id)`` is unique, so a
    redelivered or concurrent copy is recognised and answered without being handled twice.

    A refused request (a foreign address, a body that is no notice) is stored too, with a generated id, so that
    staff can see who knocks. The body is kept as received for disputes.
    """

    provider = models.CharField(_("gateway"), max_length=40)
    event_id = models.CharField(max_length=200)
    event = models.CharField(_("event"), max_length=60, blank=True)
    object_id = models.CharField(_("object"), max_length=100, blank=True)
    body = models.TextField(blank=True)
    remote_addr = models.CharField(_("from address"), max_length=45, blank=True)
    received_at = models.DateTimeField(_("received"))
    handled_at = models.DateTimeField(_("handled"), null=True, blank=True)
    # When a handler last took it (a redelivery takes over one that failed or whose handler was lost), and how
    # many times one did.
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    outcome = models.CharField(_("outcome"), max_length=20, choices=EventOutcome.choices, default="received")
    error = models.CharField(_("details"), max_length=500, blank=True)
    checkout = models.ForeignKey(Checkout, null=True, blank=True, on_delete=models.PROTECT, related_name="events")

    class Meta:
        verbose_name = _("gateway notice")
        verbose_name_plural = _("gateway notices")
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["-received_at"], name="payments_event_received_idx")]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="payments_event_uniq")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"
