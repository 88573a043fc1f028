from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.models import Branch
from abonent.core.phones import format_phone


class SubscriberKind(models.TextChoices):
    INDIVIDUAL = "individual", _("Individual")
    ORGANIZATION = "organization", _("Organisation")


class SubscriberStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    CLOSED = "closed", _("Closed")


class SubscriberGroup(models.Model):
    """A tag operators put on subscribers ("VIP", "school", "never block"), used by filters and later rules."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("subscriber group")
        verbose_name_plural = _("subscriber groups")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subscriber(models.Model):
    """A person or organisation the ISP serves, identified everywhere by its personal account number."""

    account_number = models.CharField(_("account number"), max_length=20, unique=True)
    # The account number the subscriber had in the billing system the ISP migrated from (any digits, kept as
    # given): receipts, terminals and bank transfers keep using it for years. Unique among subscribers and never
    # equal to another subscriber's ``account_number``, so either number names exactly one account.
    legacy_account = models.CharField(_("old account number"), max_length=20, null=True, blank=True, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=SubscriberKind.choices, default=SubscriberKind.INDIVIDUAL)
    status = models.CharField(
        _("status"), max_length=20, choices=SubscriberStatus.choices, default=SubscriberStatus.ACTIVE, db_index=True
    )
    branch = models.ForeignKey(Branch, verbose_name=_("branch"), on_delete=models.PROTECT, related_name="subscribers")

    # A person.
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    middle_name = models.CharField(_("patronymic"), max_length=100, blank=True)
    birth_date = models.DateField(_("date of birth"), null=True, blank=True)
    passport_series = models.CharField(_("passport series"), max_length=4, blank=True)
    passport_number = models.CharField(_("passport number"), max_length=6, blank=True)
    passport_issued_by = models.CharField(_("passport issued by"), max_length=255, blank=True)
    passport_issued_on = models.DateField(_("passport issued on"), null=True, blank=True)

    # An organisation.
    organization_name = models.CharField(_("organisation name"), max_length=255, blank=True)
    inn = models.CharField(_("INN"), max_length=12, blank=True, db_index=True)
    kpp = models.CharField(_("KPP"), max_length=9, blank=True)

    # The name to show and sort by, derived from the fields above on every save by the actions.
    display_name = models.CharField(_("name"), max_length=255, db_index=True)
    # ``search.name_key(display_name)``: the name folded ("семенов петр"), kept current by the actions. Search
    # ranks subscribers whose name starts with the typed words first and finds them through a btree range on
    # this column. On PostgreSQL the column has ``COLLATE "C"`` (migration 0005), so its order is the binary
    # order SQLite uses: an ``AlterField`` on it must keep that collation.
    name_key = models.CharField(max_length=255, default="", editable=False)
    # Lower-cased account number, names, contract numbers, phones (digits), emails, addresses, MACs and
    # serials in one column, kept current by the actions; searched with a trigram index on PostgreSQL.
    search_text = models.TextField(default="", editable=False)

    groups = models.ManyToManyField(SubscriberGroup, verbose_name=_("groups"), blank=True, related_name="subscribers")

    consent_personal_data = models.BooleanField(_("consent to personal data processing"), default=False)
    consent_personal_data_at = models.DateTimeField(null=True, blank=True)
    consent_marketing = models.BooleanField(_("consent to marketing messages"), default=False)
    consent_marketing_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    close_reason = models.TextField(_("reason for closing"), blank=True)

    class Meta:
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        ordering = ["display_name", "id"]
        indexes = [
            models.Index(fields=["branch", "status"], name="subscribers_branch_status_idx"),
            # Name matches first, in name order, index-only for the list's filters (``include`` is PostgreSQL's).
            models.Index(
                fields=["name_key", "id"],
                include=["display_name", "branch", "status", "kind"],
                name="subscribers_name_key_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="closed", closed_at__isnull=False) | Q(status="active", closed_at__isnull=True),
                name="subscribers_closed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_number} {self.display_name}"

    @property
    def is_organization(self) -> bool:
        return self.kind == SubscriberKind.ORGANIZATION

    @property
    def is_closed(self) -> bool:
        return self.status == SubscriberStatus.CLOSED


class ContractStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    TERMINATED = "terminated", _("Terminated")


class Contract(models.Model):
    """A signed service contract (договор) of a subscriber."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="contracts")
    number = models.CharField(_("contract number"), max_length=50, unique=True)
    signed_on = models.DateField(_("signed on"))
    status = models.CharField(_("status"), max_length=20, choices=ContractStatus.choices, default=ContractStatus.ACTIVE)
    terminated_on = models.DateField(_("terminated on"), null=True, blank=True)

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["signed_on", "id"]

    def __str__(self) -> str:
        return _("No. %(number)s of %(date)s") % {"number": self.number, "date": self.signed_on.strftime("%d.%m.%Y")}


class AddressKind(models.TextChoices):
    SERVICE = "service", _("Service address")
    REGISTRATION = "registration", _("Registration address")
    POSTAL = "postal", _("Postal address")


class Address(models.Model):
    """An address of a subscriber: where the service is delivered, registered, or where post goes."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="addresses")
    kind = models.CharField(_("kind"), max_length=20, choices=AddressKind.choices, default=AddressKind.SERVICE)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    city = models.CharField(_("city"), max_length=100)
    street = models.CharField(_("street"), max_length=150, blank=True)
    house = models.CharField(_("house"), max_length=20)
    building = models.CharField(_("building"), max_length=20, blank=True)
    apartment = models.CharField(_("apartment"), max_length=20, blank=True)
    entrance = models.CharField(_("entrance"), max_length=10, blank=True)
    floor = models.CharField(_("floor"), max_length=10, blank=True)
    comment = models.CharField(_("comment"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")
        ordering = ["kind", "id"]

    def __str__(self) -> str:
        return self.as_text()

    def as_text(self) -> str:
        parts = [self.city]
        if self.street:
            parts.append(self.street)
        house = _("h. %(house)s") % {"house": self.house}
        if self.building:
            house += " " + _("bld. %(building)s") % {"building": self.building}
        parts.append(house)
        if self.apartment:
            parts.append(_("apt. %(apartment)s") % {"apartment": self.apartment})
        return ", ".join(parts)


class ContactKind(models.TextChoices):
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")


class ContactPoint(models.Model):
    """A phone (E.164) or email of a subscriber."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="contacts")
    kind = models.CharField(_("kind"), max_length=10, choices=ContactKind.choices)
    value = models.CharField(_("value"), max_length=254, db_index=True)
    is_primary = models.BooleanField(_("primary"), default=False)
    comment = models.CharField(_("comment"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["kind", "-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "kind", "value"], name="subscribers_contact_uniq"),
        ]

    def __str__(self) -> str:
        return self.display_value

    @property
    def display_value(self) -> str:
        return format_phone(self.value) if self.kind == ContactKind.PHONE else self.value


class EquipmentKind(models.TextChoices):
    ONT = "ont", _("ONT (GPON/EPON terminal)")
    CPE = "cpe", _("CPE / modem")
    ROUTER = "router", _("Wi-Fi router")
    STB = "stb", _("IPTV set-top box")
    OTHER = "other", _("Other")


class EquipmentStatus(models.TextChoices):
    IN_STOCK = "in_stock", _("In stock")
    INSTALLED = "installed", _("Installed at subscriber")
    FAULTY = "faulty", _("Faulty")
    WRITTEN_OFF = "written_off", _("Written off")


class Equipment(models.Model):
    """One physical device (e.g. "GPON-ONT ZTE F660"), tracked by serial and MAC across subscribers."""

    kind = models.CharField(_("type"), max_length=20, choices=EquipmentKind.choices)
    vendor = models.CharField(_("vendor"), max_length=100)
    model = models.CharField(_("model"), max_length=100, blank=True)
    serial_number = models.CharField(_("serial number"), max_length=100, null=True, blank=True, unique=True)
    mac_address = models.CharField(_("MAC address"), max_length=17, null=True, blank=True, unique=True)
    branch = models.ForeignKey(
        Branch, verbose_name=_("branch"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=EquipmentStatus.choices, default=EquipmentStatus.IN_STOCK
    )
    comment = models.CharField(_("comment"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("equipment")
        verbose_name_plural = _("equipment")
        ordering = ["vendor", "model", "id"]

    def __str__(self) -> str:
        label = f"{self.get_kind_display()} {self.vendor} {self.model}".strip()
        return f"{label} ({self.serial_number})" if self.serial_number else label


class EquipmentOwnership(models.TextChoices):
    RENT = "rent", _("Rented")
    SOLD = "sold", _("Sold to subscriber")
    SUBSCRIBER = "subscriber", _("Subscriber's own")
    LOAN = "loan", _("Free loan")


class EquipmentAssignment(models.Model):
    """A device at a subscriber's premises from ``assigned_at`` until ``returned_at``."""

    equipment = models.ForeignKey(Equipment, on_delete=models.PROTECT, related_name="assignments")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="equipment_assignments")
    ownership = models.CharField(_("ownership"), max_length=20, choices=EquipmentOwnership.choices)
    assigned_at = models.DateTimeField(_("assigned"))
    returned_at = models.DateTimeField(_("returned"), null=True, blank=True)
    comment = models.CharField(_("comment"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("equipment assignment")
        verbose_name_plural = _("equipment assignments")
        ordering = ["-assigned_at", "-id"]
        constraints = [
            # A device is at one subscriber at a time.
            models.UniqueConstraint(
                fields=["equipment"], condition=Q(returned_at__isnull=True), name="subscribers_equipment_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.equipment} → {self.subscriber.account_number}"


class ConnectionEventKind(models.TextChoices):
    CONNECTED = "connected", _("Connected")
    MOVED = "moved", _("Moved to a new address")
    SUSPENDED = "suspended", _("Suspended")
    RECONNECTED = "reconnected", _("Reconnected")
    DISCONNECTED = "disconnected", _("Disconnected")
    VISIT = "visit", _("Technician visit")


class ConnectionEvent(models.Model):
    """One step in a subscriber's connection history: hook-up, move, technician visit, disconnection."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="connection_events")
    kind = models.CharField(_("event"), max_length=20, choices=ConnectionEventKind.choices)
    happened_on = models.DateField(_("date"))
    address = models.ForeignKey(
        Address, verbose_name=_("address"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.CharField(_("comment"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("connection event")
        verbose_name_plural = _("connection history")
        ordering = ["-happened_on", "-id"]

    def __str__(self) -> str:
        return f"{self.happened_on} {self.get_kind_display()}"


class Note(models.Model):
    """A free-text note on the subscriber card, by a staff member."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(_("text"))
    is_pinned = models.BooleanField(_("pinned"), default=False)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["-is_pinned", "-created_at", "-id"]

    def __str__(self) -> str:
        return self.text[:50]
