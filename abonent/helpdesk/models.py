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
    # Routing (issue 18): who works it, and what it is about besides the subscriber.
    queue = models.ForeignKey(
        "Queue", null=True, blank=True, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("queue")
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_tickets",
        verbose_name=_("assignee"),
    )
    nas = models.ForeignKey(
        "network.Nas", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("NAS")
    )
    equipment = models.ForeignKey(
        "subscribers.Equipment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("equipment"),
    )
    # SLA (helpdesk/sla.py): the targets in working minutes taken when the ticket opened or its priority changed,
    # the due moments computed from them, and the 80 % marks at which the supervisor is warned.
    first_response_target_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_target_minutes = models.PositiveIntegerField(null=True, blank=True)
    first_response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    first_response_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    # The resolution clock stops while the ticket waits for the subscriber or is resolved: since when, and the
    # working seconds of every earlier stop (added to the target when the due moment is computed again).
    resolution_paused_at = models.DateTimeField(null=True, blank=True)
    resolution_paused_seconds = models.PositiveBigIntegerField(default=0)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    first_response_breached_at = models.DateTimeField(null=True, blank=True)
    resolution_breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-updated_at", "-id"]
        indexes = [
            # The portal's list and the flood limit (tickets of a subscriber in the last day).
            models.Index(fields=["subscriber", "-created_at"], name="helpdesk_ticket_sub_idx"),
            # The console's list: open ones first, most recently touched first.
            models.Index(fields=["status", "-updated_at"], name="helpdesk_ticket_status_idx"),
            # The SLA sweep: open tickets whose warning or due moment has come.
            models.Index(fields=["status", "resolution_due_at"], name="helpdesk_ticket_sla_idx"),
            models.Index(fields=["queue", "status"], name="helpdesk_ticket_queue_idx"),
            models.Index(fields=["assignee", "status"], name="helpdesk_ticket_assignee_idx"),
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


# --- queues, SLA and attachments (issue 18) ------------------------------------------------------------------


class Queue(models.Model):
    """A group of staff that works one kind of ticket ("Line 1", "Network", "Connections"); its supervisor is who an
    SLA escalation goes to."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="helpdesk_queues", verbose_name=_("members")
    )
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="supervised_queues",
        verbose_name=_("supervisor"),
    )

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkingCalendar(models.Model):
    """When the SLA clock runs: per weekday hours in the operator's time zone (``WorkingHours``), minus
    ``Holiday`` dates; or around the clock (``around_the_clock``, holidays ignored)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    around_the_clock = models.BooleanField(_("24/7"), default=False)

    class Meta:
        verbose_name = _("working calendar")
        verbose_name_plural = _("working calendars")

    def __str__(self) -> str:
        return self.name


class WorkingHours(models.Model):
    """One weekday's working hours of a calendar (0 = Monday); a weekday without a row is a day off."""

    calendar = models.ForeignKey(WorkingCalendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=[(i, str(i)) for i in range(7)])
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        ordering = ["calendar", "weekday"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "weekday"], name="helpdesk_hours_one_per_day"),
            models.CheckConstraint(condition=Q(opens__lt=models.F("closes")), name="helpdesk_hours_opens_first"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="helpdesk_hours_weekday"),
        ]

    def __str__(self) -> str:
        return f"{self.weekday}: {self.opens:%H:%M}-{self.closes:%H:%M}"


class Holiday(models.Model):
    """A public holiday or a company day off: no working-hours calendar counts it."""

    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class SlaPolicy(models.Model):
    """The targets of tickets of a category (empty: any category) and a priority, in working minutes of
    ``calendar`` (empty: the built-in Mon–Fri 09:00–18:00). Without a row the built-in defaults apply
    (``sla.DEFAULT_TARGETS``, docs/helpdesk-sla.md)."""

    category = models.CharField(_("category"), max_length=30, choices=TicketCategory.choices, blank=True)
    priority = models.CharField(_("priority"), max_length=10, choices=TicketPriority.choices)
    first_response_minutes = models.PositiveIntegerField(_("first response, working minutes"))
    resolution_minutes = models.PositiveIntegerField(_("resolution, working minutes"))
    calendar = models.ForeignKey(
        WorkingCalendar, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("working calendar")
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["category", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["category", "priority"], name="helpdesk_sla_policy_unique"),
            models.CheckConstraint(
                condition=Q(first_response_minutes__gt=0, resolution_minutes__gt=0), name="helpdesk_sla_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display() or '*'} / {self.get_priority_display()}"


class SlaEventKind(models.TextChoices):
    ESCALATED = "escalated", _("Escalated to the supervisor")
    FIRST_RESPONSE_BREACHED = "first_response_breached", _("First response overdue")
    RESOLUTION_BREACHED = "resolution_breached", _("Resolution overdue")


class SlaEvent(models.Model):
    """Something the SLA sweep did to a ticket, at most once per kind (the unique constraint is what makes a second
    or concurrent sweep a no-op); ``recipient`` is the supervisor it was shown to in the console."""

    ticket = models.ForeignKey("Ticket", on_delete=models.CASCADE, related_name="sla_events")
    kind = models.CharField(max_length=30, choices=SlaEventKind.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("SLA event")
        verbose_name_plural = _("SLA events")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["ticket", "kind"], name="helpdesk_sla_event_once")]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.kind}"


class TicketAttachment(models.Model):
    """A file sent with a comment, stored under ``ABONENT_HELPDESK_ATTACHMENTS_DIR`` as ``stored_name`` (never
    a public URL: served by the console's and the portal's views after their access checks). ``content_type`` is
    what the first bytes say, not what the sender claimed."""

    ticket = models.ForeignKey("Ticket", on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(TicketComment, on_delete=models.CASCADE, related_name="attachments")
    file_name = models.CharField(_("file name"), max_length=200)
    stored_name = models.CharField(max_length=100, unique=True)
    content_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.file_name
