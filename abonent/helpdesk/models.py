"""A ticket and the comments of its thread."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.subscribers.models import Subscriber


class TicketCategory(models.TextChoices):
    NO_CONNECTION = "no_connection", _("No connection")
    SLOW_SPEED = "slow_speed", _("Slow speed")
    BILLING = "billing", _("Billing question")
    # «Подключение»: carries the address to connect (issue 18 turns a done one into a subscriber).
    CONNECTION_REQUEST = "connection_request", _("Connection request")
    EQUIPMENT = "equipment", _("Equipment")
    OTHER = "other", _("Other")


class TicketStatus(models.TextChoices):
    NEW = "new", _("New")
    IN_PROGRESS = "in_progress", _("In progress")
    WAITING_SUBSCRIBER = "waiting_subscriber", _("Waiting for the subscriber")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


# Statuses in which the ticket still needs someone; the others have ``closed_at`` set.
OPEN_STATUSES = frozenset({TicketStatus.NEW, TicketStatus.IN_PROGRESS, TicketStatus.WAITING_SUBSCRIBER})
FINISHED_STATUSES = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})


class TicketPriority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


class TicketSource(models.TextChoices):
    PORTAL = "portal", _("Portal")
    CONSOLE = "console", _("Console")
    API = "api", _("Portal API")


class Ticket(models.Model):
    """One request of a subscriber: a fault, a question, a connection request. Its text is the thread's first
    comment; ``closed_at`` is when it was resolved or closed (set exactly in those two statuses)."""

    number = models.PositiveBigIntegerField(_("number"), unique=True)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="tickets")
    category = models.CharField(_("category"), max_length=30, choices=TicketCategory.choices)
    subject = models.CharField(_("subject"), max_length=200)
    # Free text for now: where to connect (a connection request). Issue 18 may resolve it to an Address.
    address = models.CharField(_("address"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=TicketStatus.choices, default=TicketStatus.NEW)
    priority = models.CharField(
        _("priority"), max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    source = models.CharField(_("source"), max_length=10, choices=TicketSource.choices)
    # The staff member who opened it in the console; empty when the subscriber did.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("opened"))
    updated_at = models.DateTimeField(_("updated"))
    # The last change its subscriber can see (a public message, a status): ``updated_at`` but internal notes, which
    # must not show in the portal even as a moved time.
    public_updated_at = models.DateTimeField(_("updated for the subscriber"))
    # The first public reply by staff: where an SLA's "first response" timer (issue 18) stops.
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-updated_at", "-id"]
        indexes = [
            # The portal's list and the flood limit (tickets of a subscriber in the last day).
            models.Index(fields=["subscriber", "-created_at"], name="helpdesk_ticket_sub_idx"),
            # The console's list: open ones first, most recently touched first.
            models.Index(fields=["status", "-updated_at"], name="helpdesk_ticket_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["resolved", "closed"], closed_at__isnull=False)
                | Q(status__in=["new", "in_progress", "waiting_subscriber"], closed_at__isnull=True),
                name="helpdesk_ticket_closed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class CommentAuthor(models.TextChoices):
    SUBSCRIBER = "subscriber", _("Subscriber")
    STAFF = "staff", _("Staff")


class TicketComment(models.Model):
    """One message of a ticket's thread: the subscriber's (always public) or a staff member's, public (a reply the
    subscriber sees) or internal (a note among staff, never shown in the portal or its API)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author_kind = models.CharField(max_length=10, choices=CommentAuthor.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    text = models.TextField(_("text"))
    is_public = models.BooleanField(_("visible to the subscriber"), default=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("ticket comment")
        verbose_name_plural = _("ticket comments")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="helpdesk_comment_ticket_idx")]
        constraints = [
            # A subscriber's comment has no staff author and is public; a staff comment names its author.
            models.CheckConstraint(
                condition=Q(author_kind="subscriber", author__isnull=True, is_public=True)
                | Q(author_kind="staff", author__isnull=False),
                name="helpdesk_comment_author",
            ),
        ]

    def __str__(self) -> str:
        return self.text[:50]

    @property
    def by_subscriber(self) -> bool:
        return self.author_kind == CommentAuthor.SUBSCRIBER
