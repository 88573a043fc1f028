"""A mass incident, where it is (NAS, addresses), whom it affects, the messages sent about it, the tickets linked to
it and the one compensation credited for it."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from abonent.billing.models import LedgerTransaction, Subscription
from abonent.core.money import MoneyField
from abonent.helpdesk.models import Ticket
from abonent.network.models import Nas
from abonent.notifications.models import BulkMessage
from abonent.subscribers.models import Subscriber


class IncidentKind(models.TextChoices):
    OUTAGE = "outage", _("Outage")
    DEGRADED = "degraded", _("Degraded service")
    PLANNED = "planned", _("Planned work")


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class Incident(models.Model):
    """One outage, slowdown or planned work that touches many subscribers at once. ``description`` is public: the
    portal shows it to the affected. ``ends_at`` is empty while it lasts; a resolved one has it."""

    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("text for subscribers"), max_length=2000)
    kind = models.CharField(_("kind"), max_length=10, choices=IncidentKind.choices, default=IncidentKind.OUTAGE)
    status = models.CharField(_("status"), max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    starts_at = models.DateTimeField(_("started"))
    ends_at = models.DateTimeField(_("ended"), null=True, blank=True)
    nas = models.ManyToManyField(Nas, verbose_name=_("NAS"), blank=True, related_name="+")
    # The size of the stored affected set (IncidentSubscriber), written with it: the list shows it without a count.
    affected_count = models.PositiveIntegerField(_("affected"), default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("opened"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["status", "-starts_at"], name="incidents_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open") | Q(status="resolved", ends_at__isnull=False),
                name="incidents_resolved_has_end",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gte=F("starts_at")), name="incidents_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status == IncidentStatus.OPEN


class IncidentArea(models.Model):
    """One address scope of an incident: a whole city, one street of it, or a range of house numbers on a street
    (``house_from``..``house_to``, inclusive, by the house's leading number: "12/1" and "12к2" are 12). Matched
    against subscribers' service addresses, city and street compared as typed, in any letter case."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="areas")
    city = models.CharField(_("city"), max_length=100)
    street = models.CharField(_("street"), max_length=150, blank=True)
    house_from = models.PositiveIntegerField(_("from house"), null=True, blank=True)
    house_to = models.PositiveIntegerField(_("to house"), null=True, blank=True)

    class Meta:
        verbose_name = _("incident area")
        verbose_name_plural = _("incident areas")
        ordering = ["id"]
        constraints = [
            # A range needs its street and both ends in order; a city or a street has no range.
            models.CheckConstraint(
                condition=Q(house_from__isnull=True, house_to__isnull=True)
                | (Q(house_from__isnull=False, house_to__isnull=False, house_from__lte=F("house_to")) & ~Q(street="")),
                name="incidents_area_range",
            ),
        ]

    def __str__(self) -> str:
        parts = [self.city, self.street]
        if self.house_from is not None:
            parts.append(f"{self.house_from}–{self.house_to}")
        return ", ".join(p for p in parts if p)


class IncidentSubscriber(models.Model):
    """One subscriber the incident affects, as computed when it was opened or last changed
    (``affected.store_affected``). Kept after it is resolved: the compensation and the history read it."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="affected")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("affected subscriber")
        verbose_name_plural = _("affected subscribers")
        constraints = [
            models.UniqueConstraint(fields=["incident", "subscriber"], name="incidents_affected_uniq"),
        ]
        # The portal's banner and the card's header: the incidents of one subscriber.
        indexes = [models.Index(fields=["subscriber"], name="incidents_affected_sub_idx")]

    def __str__(self) -> str:
        return f"{self.incident_id}:{self.subscriber_id}"


class IncidentTicket(models.Model):
    """A ticket of an affected subscriber opened during the incident (no connection, slow speed), linked to it."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="ticket_links")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    linked_at = models.DateTimeField()

    class Meta:
        verbose_name = _("linked ticket")
        verbose_name_plural = _("linked tickets")
        constraints = [models.UniqueConstraint(fields=["incident", "ticket"], name="incidents_ticket_uniq")]
        indexes = [models.Index(fields=["ticket"], name="incidents_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.incident_id}:{self.ticket_id}"


class IncidentMessage(models.Model):
    """One message to the affected, sent as a bulk message. ``digest`` (SHA-256 of the channel, subject and text) is
    its key: the same message pressed twice is this one row and one bulk, so each subscriber gets it once."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="messages")
    digest = models.CharField(max_length=64)
    bulk = models.ForeignKey(BulkMessage, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("incident message")
        verbose_name_plural = _("incident messages")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["incident", "digest"], name="incidents_message_uniq")]

    def __str__(self) -> str:
        return f"{self.incident_id}:{self.bulk_id}"


class Compensation(models.Model):
    """The credit of ``days`` days' fees given to the subscribers an incident affected: at most one per incident
    (the unique incident), its lines written in the same transaction."""

    incident = models.OneToOneField(Incident, on_delete=models.PROTECT, related_name="compensation")
    days = models.PositiveSmallIntegerField(_("days"))
    total = MoneyField(_("total"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("compensation")
        verbose_name_plural = _("compensations")
        constraints = [models.CheckConstraint(condition=Q(days__gte=1), name="incidents_compensation_days")]

    def __str__(self) -> str:
        return f"{self.incident_id}: {self.days}"


class CompensationLine(models.Model):
    """What one subscription was credited: ``days``/period-days of its period fee at its price on the day, posted as
    the ledger transaction keyed ``compensation:<incident>:<subscription>``."""

    compensation = models.ForeignKey(Compensation, on_delete=models.PROTECT, related_name="lines")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="+")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="+")
    amount = MoneyField(_("amount"))
    transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("compensation line")
        verbose_name_plural = _("compensation lines")
        constraints = [
            models.UniqueConstraint(fields=["compensation", "subscription"], name="incidents_comp_line_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="incidents_comp_line_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.amount}"
