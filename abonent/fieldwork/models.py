"""The warehouse (device models, devices by serial number, their moves) and technician jobs (a slot, an installer,
a checklist, the devices issued for it)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan
from abonent.core.models import Branch
from abonent.helpdesk.models import Ticket
from abonent.subscribers.models import Equipment, Subscriber


class DeviceKind(models.TextChoices):
    ONT = "ont", _("ONT (GPON/EPON terminal)")
    CPE = "cpe", _("CPE / modem")
    ROUTER = "router", _("Wi-Fi router")
    SWITCH = "switch", _("Switch")
    STB = "stb", _("IPTV set-top box")
    OTHER = "other", _("Other")


class DeviceModel(models.Model):
    """A kind of device the ISP stocks ("ZTE F660", an ONT): what the warehouse counts by."""

    vendor = models.CharField(_("vendor"), max_length=100)
    name = models.CharField(_("model"), max_length=100)
    kind = models.CharField(_("type"), max_length=20, choices=DeviceKind.choices)

    class Meta:
        verbose_name = _("device model")
        verbose_name_plural = _("device models")
        ordering = ["vendor", "name", "id"]
        constraints = [models.UniqueConstraint(fields=["vendor", "name"], name="fieldwork_model_uniq")]

    def __str__(self) -> str:
        return f"{self.vendor} {self.name}"


class DeviceState(models.TextChoices):
    RECEIVED = "received", _("In stock")
    ISSUED = "issued", _("Issued to an installer")
    INSTALLED = "installed", _("Installed at a subscriber")
    RETURNED = "returned", _("Returned to stock")
    WRITTEN_OFF = "written_off", _("Written off")


class StockDevice(models.Model):
    """One physical device of the warehouse, by its serial number (unique within its model). Its state changes only
    through ``stock.do_*`` actions, each writing a ``StockMove``. Installed, it is also a ``subscribers.Equipment``
    assigned to the subscriber (``equipment``), the card's record of what is at the premises."""

    device_model = models.ForeignKey(
        DeviceModel, verbose_name=_("model"), on_delete=models.PROTECT, related_name="devices_of_model"
    )
    serial_number = models.CharField(_("serial number"), max_length=100)
    mac_address = models.CharField(_("MAC address"), max_length=17, null=True, blank=True, unique=True)
    state = models.CharField(_("state"), max_length=20, choices=DeviceState.choices, default=DeviceState.RECEIVED)
    # The installer holding it (state "issued" exactly).
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("installer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The job it was issued for, if any (kept after installing: which visit put it there).
    job = models.ForeignKey(
        "Job", verbose_name=_("job"), null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    # Where it is installed (state "installed" exactly) and the card's equipment record of it (kept once made).
    subscriber = models.ForeignKey(
        Subscriber, verbose_name=_("subscriber"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    equipment = models.OneToOneField(
        Equipment, null=True, blank=True, on_delete=models.PROTECT, related_name="stock_device"
    )
    received_at = models.DateTimeField(_("received"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["device_model", "serial_number", "id"]
        indexes = [models.Index(fields=["state", "device_model"], name="fieldwork_device_state_idx")]
        constraints = [
            models.UniqueConstraint(fields=["device_model", "serial_number"], name="fieldwork_device_serial_uniq"),
            models.CheckConstraint(
                condition=Q(state="issued", holder__isnull=False) | (~Q(state="issued") & Q(holder__isnull=True)),
                name="fieldwork_device_issued_has_holder",
            ),
            models.CheckConstraint(
                condition=Q(state="installed", subscriber__isnull=False)
                | (~Q(state="installed") & Q(subscriber__isnull=True)),
                name="fieldwork_device_installed_has_subscriber",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.device_model} {self.serial_number}"


class StockMove(models.Model):
    """One change of a device's state, append-only: who moved it, from what to what, to whom."""

    device = models.ForeignKey(StockDevice, on_delete=models.PROTECT, related_name="moves")
    from_state = models.CharField(max_length=20, choices=DeviceState.choices, blank=True)  # blank: received new
    to_state = models.CharField(max_length=20, choices=DeviceState.choices)
    installer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    job = models.ForeignKey("Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    comment = models.CharField(_("comment"), max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("stock move")
        verbose_name_plural = _("stock moves")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["device", "created_at"], name="fieldwork_move_device_idx")]

    def __str__(self) -> str:
        return f"{self.device_id}: {self.from_state or '-'} → {self.to_state}"


class JobKind(models.TextChoices):
    CONNECTION = "connection", _("Connection")
    REPAIR = "repair", _("Repair")


class JobStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class Job(models.Model):
    """One technician visit: a slot on a day, an installer, where to go and whom to call, a checklist, the devices
    issued for it. Made from a helpdesk ticket (``ticket``, its ``subscriber``), or for a prospect (no ticket and no
    subscriber yet: the contact and address fields; closing the connection job creates the subscriber)."""

    kind = models.CharField(_("kind"), max_length=20, choices=JobKind.choices)
    status = models.CharField(_("status"), max_length=20, choices=JobStatus.choices, default=JobStatus.SCHEDULED)
    ticket = models.ForeignKey(
        Ticket, verbose_name=_("request"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subscriber = models.ForeignKey(
        Subscriber, verbose_name=_("subscriber"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Whose job it is for branch limits: the subscriber's branch, or the one chosen for a prospect (who becomes a
    # subscriber of it).
    branch = models.ForeignKey(Branch, verbose_name=_("branch"), on_delete=models.PROTECT, related_name="+")
    installer = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("installer"), on_delete=models.PROTECT, related_name="+"
    )
    day = models.DateField(_("date"))
    starts_at = models.TimeField(_("from"))
    ends_at = models.TimeField(_("to"))
    address = models.CharField(_("address"), max_length=300)
    contact_phone = models.CharField(_("phone"), max_length=20, blank=True)  # E.164
    # A prospect: the person and the address in parts, as the subscriber will be created with them.
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    middle_name = models.CharField(_("patronymic"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    street = models.CharField(_("street"), max_length=150, blank=True)
    house = models.CharField(_("house"), max_length=20, blank=True)
    apartment = models.CharField(_("apartment"), max_length=20, blank=True)
    plan = models.ForeignKey(
        Plan, verbose_name=_("plan"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(_("note"), blank=True)
    # What the installer wrote when closing it.
    result = models.TextField(_("result"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["day", "starts_at", "id"]
        indexes = [
            # The installer's day and the double-booking check.
            models.Index(fields=["installer", "day", "starts_at"], name="fieldwork_job_installer_idx"),
            models.Index(fields=["branch", "day"], name="fieldwork_job_branch_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="fieldwork_job_slot_order"),
            models.CheckConstraint(
                condition=Q(status="scheduled", closed_at__isnull=True)
                | Q(status__in=["done", "cancelled"], closed_at__isnull=False),
                name="fieldwork_job_closed_has_time",
            ),
            # A request is worked by one open job at a time.
            models.UniqueConstraint(
                fields=["ticket"], condition=Q(status="scheduled"), name="fieldwork_job_one_open_per_ticket"
            ),
        ]

    def __str__(self) -> str:
        return _("Job %(pk)s") % {"pk": self.pk}

    @property
    def is_open(self) -> bool:
        return self.status == JobStatus.SCHEDULED

    @property
    def is_prospect(self) -> bool:
        return self.subscriber_id is None


class InstallerDay(models.Model):
    """One installer's one day: the row a booking locks, so that two bookings of the same installer for the same
    day are checked for overlap one after the other (no exclusion constraint works on SQLite too)."""

    installer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["installer", "day"], name="fieldwork_installer_day_uniq")]

    def __str__(self) -> str:
        return f"{self.installer_id} {self.day}"


class ChecklistTemplateItem(models.Model):
    """One line of the checklist every new job of ``kind`` starts with."""

    kind = models.CharField(_("kind"), max_length=20, choices=JobKind.choices)
    position = models.PositiveSmallIntegerField(_("position"))
    text = models.CharField(_("text"), max_length=200)

    class Meta:
        verbose_name = _("checklist item")
        verbose_name_plural = _("checklist items")
        ordering = ["kind", "position", "id"]

    def __str__(self) -> str:
        return self.text


class JobChecklistItem(models.Model):
    """One line of a job's checklist (copied from the template when the job was made), ticked by the installer."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="checklist")
    position = models.PositiveSmallIntegerField()
    text = models.CharField(_("text"), max_length=200)
    done = models.BooleanField(_("done"), default=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.text
