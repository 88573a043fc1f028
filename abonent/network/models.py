"""The network side of a subscriber: the NAS that connect them, their logins and addresses, their sessions
and traffic, and the queue of changes pushed to the NAS (CoA / Disconnect, RFC 5176)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from abonent.billing.models import Subscription
from abonent.core import secrets
from abonent.subscribers.models import Subscriber

from .vendors.base import is_control_character


class Vendor(models.TextChoices):
    MIKROTIK = "mikrotik", "MikroTik RouterOS"
    ACCEL_PPP = "accel_ppp", "accel-ppp"
    CISCO = "cisco", "Cisco (ISG / IOS-XE)"


def validate_nas_name(value: str) -> None:
    """A NAS's name is also its NAS-Identifier, written into the configuration lines the administrator pastes on
    the NAS: a line break, a tab or another control character in it would end a line there and start another."""
    if any(is_control_character(ch) for ch in value or ""):
        raise ValidationError(
            _("A name cannot hold line breaks, tabs or other control characters."), code="nas_name_control"
        )


class Nas(models.Model):
    """A network access server (BRAS) that asks us who may connect and reports what they used."""

    name = models.CharField(_("name"), max_length=100, unique=True, validators=[validate_nas_name])
    ip_address = models.GenericIPAddressField(_("IP address"), unique=True)
    # Encrypted (abonent.core.secrets): MD5-based RADIUS needs the clear text back. Never logged.
    secret_encrypted = models.TextField(editable=False)
    vendor = models.CharField(_("vendor"), max_length=20, choices=Vendor.choices, default=Vendor.MIKROTIK)
    coa_port = models.PositiveIntegerField(_("CoA port"), default=3799)
    interim_interval = models.PositiveIntegerField(
        _("interim update interval, s"),
        default=300,
        help_text=_("Sent as Acct-Interim-Interval. RFC 2869: not below 60 s."),
    )
    require_message_authenticator = models.BooleanField(
        _("require Message-Authenticator"),
        default=True,
        help_text=_(
            "Drop Access-Requests without Message-Authenticator (BlastRADIUS, CVE-2024-3596). "
            "Turn off only for a NAS that cannot send it, such as accel-ppp before blast-protection."
        ),
    )
    debtor_address_list = models.CharField(
        _("address list for debtors"),
        max_length=64,
        blank=True,
        default="debtors",
        help_text=_("MikroTik: the firewall address list that redirects debtors to the payment page."),
    )
    debtor_pool = models.CharField(
        _("address pool for debtors"),
        max_length=64,
        blank=True,
        help_text=_("Pool name on the NAS (Framed-Pool) for debtors; empty to keep the usual pool."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("NAS")
        verbose_name_plural = _("NAS")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(interim_interval__gte=60), name="network_nas_interim_gte_60"),
            models.CheckConstraint(condition=Q(coa_port__gte=1, coa_port__lte=65535), name="network_nas_coa_port"),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:  # the secret stays out of tracebacks and logs
        return f"<Nas {self.pk} {self.name} {self.ip_address}>"

    @property
    def secret(self) -> str:
        return secrets.decrypt(self.secret_encrypted)

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = secrets.encrypt(value)


class PoolKind(models.TextChoices):
    REGULAR = "regular", _("Subscribers")
    DEBTORS = "debtors", _("Debtors")


class IpPool(models.Model):
    """An address pool. Addresses are handed out by the NAS from its pool of the same name (Framed-Pool);
    here it is named, described and used to pick which pool a login's sessions use."""

    name = models.CharField(_("name"), max_length=64, unique=True, help_text=_("The pool's name on the NAS."))
    network = models.CharField(_("network"), max_length=64, help_text=_("CIDR, e.g. 100.64.0.0/16"))
    kind = models.CharField(_("kind"), max_length=20, choices=PoolKind.choices, default=PoolKind.REGULAR)

    class Meta:
        verbose_name = _("IP pool")
        verbose_name_plural = _("IP pools")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LoginKind(models.TextChoices):
    PPPOE = "pppoe", _("PPPoE login and password")
    IPOE_MAC = "ipoe_mac", _("IPoE by MAC address")
    IPOE_OPT82 = "ipoe_opt82", _("IPoE by DHCP option 82")
    HOTSPOT = "hotspot", _("Hotspot login and password")


class Login(models.Model):
    """How a subscriber's equipment identifies itself to the NAS: a PPPoE or hotspot login with password,
    or for IPoE the MAC address or the DHCP option 82 circuit (``username`` holds the normalised value)."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="network_logins")
    # The subscription whose plan sets the speed; when empty, the subscriber's current internet subscription.
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="network_logins"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=LoginKind.choices, default=LoginKind.PPPOE)
    username = models.CharField(_("login"), max_length=253)
    # Encrypted: CHAP and MS-CHAPv2 verify a response computed from the clear-text password.
    password_encrypted = models.TextField(blank=True, editable=False)
    static_ip = models.GenericIPAddressField(_("static IP address"), null=True, blank=True, unique=True)
    pool = models.ForeignKey(
        IpPool, verbose_name=_("address pool"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    simultaneous_use = models.PositiveSmallIntegerField(_("sessions at once"), default=1)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("network login")
        verbose_name_plural = _("network logins")
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "username"], name="network_login_kind_username_uniq"),
            models.CheckConstraint(condition=Q(simultaneous_use__gte=1), name="network_login_simultaneous_gte_1"),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def password(self) -> str:
        return secrets.decrypt(self.password_encrypted)

    def set_password(self, value: str) -> None:
        self.password_encrypted = secrets.encrypt(value) if value else ""


class PolicyChange(models.Model):
    """A subscriber whose authorisation inputs changed (plan, logins, subscription state). The RADIUS
    processes read this feed by id to refresh their in-memory policy without reloading everything."""

    subscriber_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("policy change")
        verbose_name_plural = _("policy changes")

    def __str__(self) -> str:
        return f"{self.pk}: {self.subscriber_id}"


class SessionStatus(models.TextChoices):
    OPEN = "open", _("Online")
    CLOSED = "closed", _("Closed")


# Why a session ended, for staff: Acct-Terminate-Cause as the NAS names it (RFC 2866 §5.10), and "Stale" for the
# sweeper's close. Stored as the NAS sent it (a value we do not know is shown as it came).
TERMINATE_CAUSES = {
    "User-Request": _("disconnected by the subscriber"),
    "Lost-Carrier": _("carrier lost"),
    "Lost-Service": _("service lost"),
    "Idle-Timeout": _("idle timeout"),
    "Session-Timeout": _("session timeout"),
    "Admin-Reset": _("reset by an administrator"),
    "Admin-Reboot": _("NAS rebooted by an administrator"),
    "Port-Error": _("port error"),
    "NAS-Error": _("NAS error"),
    "NAS-Request": _("ended by the NAS"),
    "NAS-Reboot": _("NAS rebooted"),
    "Port-Unneeded": _("port no longer needed"),
    "Port-Preempted": _("port preempted"),
    "Port-Suspended": _("port suspended"),
    "Service-Unavailable": _("service unavailable"),
    "Callback": _("callback"),
    "User-Error": _("subscriber's error"),
    "Host-Request": _("ended by the host"),
    "Stale": _("no updates from the NAS"),
}


class Session(models.Model):
    """One NAS session, upserted idempotently from accounting by ``(nas, unique_id)``.

    ``unique_id`` is an MD5 of (User-Name, Acct-Session-Id, NAS-IP-Address, NAS-Identifier, NAS-Port-Id,
    NAS-Port), FreeRADIUS's Acct-Unique-Session-Id: Acct-Session-Id alone repeats across NAS and after a NAS
    reboot. The Class we issue at Access-Accept, when the NAS echoes it, binds the session to its login (and so
    its subscriber) even where the User-Name differs; it is not part of the key, so a NAS that drops Class on
    some records does not split a session in two. Octet counters are cumulative 64-bit totals (Gigawords << 32 |
    Octets) and never go down, so a retransmitted or reordered record cannot count twice.
    """

    # No index of their own: (nas, unique_id) and (subscriber, started_at) lead with them. Fewer indexes keep
    # interim updates HOT (in-page, no index writes): see migration 0002.
    nas = models.ForeignKey(Nas, on_delete=models.PROTECT, related_name="sessions", db_index=False)
    unique_id = models.CharField(max_length=64)
    acct_session_id = models.CharField(_("session id"), max_length=253)
    login = models.ForeignKey(Login, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions")
    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="network_sessions", db_index=False
    )
    username = models.CharField(_("login"), max_length=253)
    framed_ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    calling_station_id = models.CharField(_("MAC / caller"), max_length=253, blank=True)
    nas_port_id = models.CharField(_("NAS port"), max_length=253, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=SessionStatus.choices, default=SessionStatus.OPEN)
    started_at = models.DateTimeField(_("started"))
    updated_at = models.DateTimeField(_("last update"))
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    session_time = models.BigIntegerField(_("duration, s"), default=0)
    input_octets = models.BigIntegerField(_("received from subscriber, bytes"), default=0)
    output_octets = models.BigIntegerField(_("sent to subscriber, bytes"), default=0)
    # The growth of the counters at the last write, computed by that write under its row lock: the traffic
    # that write adds to UsageDay. Kept on the row so a batch needs no separate read of the old totals.
    last_delta_in = models.BigIntegerField(default=0, editable=False)
    last_delta_out = models.BigIntegerField(default=0, editable=False)
    terminate_cause = models.CharField(_("end reason"), max_length=64, blank=True)
    # The NAS reports this session's counters without Gigawords: 32-bit values that wrap at 4 GiB, which a
    # newer record with a smaller counter reveals (accounting.grown_counter).
    counters_32bit = models.BooleanField(default=False, editable=False)

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["nas", "unique_id"], name="network_session_nas_unique_id_uniq"),
            models.CheckConstraint(
                condition=Q(status="open", stopped_at__isnull=True) | Q(status="closed", stopped_at__isnull=False),
                name="network_session_status_stopped",
            ),
        ]
        indexes = [
            # The small hot set: what is online now, per NAS (Accounting-On, the sweeper, monitoring). Not on
            # updated_at, which every interim changes: every update would then write every index (no HOT).
            models.Index(fields=["nas"], name="network_session_open_idx", condition=Q(status="open")),
            models.Index(fields=["subscriber", "-started_at"], name="network_session_subscriber_idx"),
            models.Index(fields=["framed_ip", "started_at"], name="network_session_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.username}@{self.nas_id} {self.acct_session_id}"

    @property
    def terminate_cause_label(self) -> str:
        return str(TERMINATE_CAUSES.get(self.terminate_cause, self.terminate_cause))


class UsageDay(models.Model):
    """Traffic per subscriber and day, summed from per-session deltas of accounting: the input of usage
    rating (included traffic, overage, FUP) on the billing side."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    input_octets = models.BigIntegerField(default=0)
    output_octets = models.BigIntegerField(default=0)
    # Written to after its day was over (a spool replayed, a collector's late batch): the traffic rating re-checks
    # the rated period holding such a day, then clears the mark (docs/billing-usage-rating.md). A day written on
    # the day itself is never marked, so accounting's updates stay HOT and the rating re-reads no closed month.
    late = models.BooleanField(default=False, db_default=False)

    class Meta:
        verbose_name = _("daily traffic")
        verbose_name_plural = _("daily traffic")
        constraints = [models.UniqueConstraint(fields=["subscriber", "day"], name="network_usageday_uniq")]
        indexes = [models.Index(fields=["subscriber", "day"], condition=Q(late=True), name="network_usageday_late")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.day}"


class UsageRecord(models.Model):
    """One traffic record received from an external collector (NetFlow, IPTV) through ``POST /usage-records``.

    Unique by ``(source, record_id)``: a collector that resends a batch adds nothing twice. The counters were
    added to the session's subscriber's ``UsageDay`` in the same transaction as the row was inserted.
    """

    source = models.CharField(_("source"), max_length=50)
    record_id = models.CharField(_("record id"), max_length=200)
    session = models.ForeignKey("Session", on_delete=models.PROTECT, related_name="+", db_index=False)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    input_octets = models.BigIntegerField(default=0)
    output_octets = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("external traffic record")
        verbose_name_plural = _("external traffic records")
        constraints = [
            models.UniqueConstraint(fields=["source", "record_id"], name="network_usagerecord_once"),
            models.CheckConstraint(
                condition=Q(input_octets__gte=0, output_octets__gte=0), name="network_usagerecord_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.record_id}"


class AuthOutcome(models.TextChoices):
    ACCEPT = "accept", _("Accepted")
    RESTRICTED = "restricted", _("Accepted with the debtor redirect")
    REJECT = "reject", _("Rejected")


class RejectReason(models.TextChoices):
    UNKNOWN_LOGIN = "unknown_login", _("No such login")
    BAD_PASSWORD = "bad_password", _("Wrong password")
    LOGIN_DISABLED = "login_disabled", _("Login is disabled")
    SUBSCRIBER_CLOSED = "subscriber_closed", _("Subscriber's contract is closed")
    NO_SUBSCRIPTION = "no_subscription", _("No active subscription")
    FROZEN = "frozen", _("Subscription is frozen")
    TOO_MANY_SESSIONS = "too_many_sessions", _("Too many sessions at once")
    UNSUPPORTED_AUTH = "unsupported_auth", _("No password or unsupported authentication method")
    NAS_MANAGEMENT = "nas_management", _("Asked for the NAS's own console, not for internet access")
    POLICY_TOO_OLD = "policy_too_old", _("Database unreachable for too long: only subscribers already online get in")
    RATE_LIMITED = "rate_limited", _("Too many wrong passwords: refused without a check for a while")
    # The subscriber's access state (dunning): the debt went unpaid past the grace period, or staff acted.
    SUSPENDED = "suspended", _("Access suspended for debt")
    BLOCKED = "blocked", _("Access blocked by operator")
    TERMINATED = "terminated", _("Access terminated by operator")
    # A time plan (pay as you go) with no package time and no money left for a unit of time.
    NO_TIME_LEFT = "no_time_left", _("No money or time left")


class AuthAttempt(models.Model):
    """The outcome of an Access-Request that was not a plain accept: rejects with their reason and accepts
    into the debtor redirect. Answers "why can't this subscriber connect?" in the console."""

    created_at = models.DateTimeField(_("time"), db_index=True)
    nas = models.ForeignKey(Nas, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(_("login"), max_length=253)
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(_("outcome"), max_length=20, choices=AuthOutcome.choices)
    reason = models.CharField(_("reason"), max_length=30, choices=RejectReason.choices, blank=True)
    calling_station_id = models.CharField(_("MAC / caller"), max_length=253, blank=True)

    class Meta:
        verbose_name = _("authentication attempt")
        verbose_name_plural = _("authentication attempts")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subscriber", "-created_at"], name="network_auth_subscriber_idx")]

    def __str__(self) -> str:
        return f"{self.username} {self.outcome} {self.reason}"


class CoaKind(models.TextChoices):
    COA = "coa", _("Change of authorisation")
    DISCONNECT = "disconnect", _("Disconnect")


class CoaReason(models.TextChoices):
    PLAN_CHANGE = "plan_change", _("Plan changed")
    TURBO_ON = "turbo_on", _("Turbo on")
    TURBO_OFF = "turbo_off", _("Turbo off")
    FUP = "fup", _("Traffic quota reached")
    RESTRICT = "restrict", _("Restricted for debt")
    RESTORE = "restore", _("Access restored")
    SUSPEND = "suspend", _("Suspended")
    STAFF = "staff", _("Disconnected by staff")
    # The "CoA" button of the sessions page: the policy in force sent again to one session (speed, redirect).
    STAFF_COA = "staff_coa", _("Policy re-sent by staff")


class CoaStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    ACKED = "acked", _("Done")
    NAKED = "naked", _("Refused by the NAS")
    FAILED = "failed", _("No answer")
    # A newer request for the same session carries everything this one would have set (network.coa.supersedes).
    SUPERSEDED = "superseded", _("Superseded by a newer request")


class CoaError(models.TextChoices):
    """Why the last attempt did not succeed, stored language-neutral; ``CoaRequest.error_text`` words it in the
    reader's language (a worker's language must not end up in the console)."""

    NAK = "nak", _("Refused by the NAS")
    NO_ANSWER = "no_answer", _("No answer")
    PORT_UNREACHABLE = "port_unreachable", _("Nothing listens on the CoA port")
    BAD_AUTHENTICATOR = "bad_authenticator", _("Reply failed the authenticator check")
    MALFORMED_REPLY = "malformed_reply", _("Malformed reply")
    SEND_ERROR = "send_error", _("Cannot send")
    RECEIVE_ERROR = "receive_error", _("Cannot receive")
    UNENCODABLE = "unencodable", _("Cannot be encoded")


# RFC 5176 §3.6 Error-Cause values; the names are protocol identifiers, shown untranslated.
ERROR_CAUSES = {
    201: "Residual-Context-Removed",
    202: "Invalid-EAP-Packet",
    401: "Unsupported-Attribute",
    402: "Missing-Attribute",
    403: "NAS-Identification-Mismatch",
    404: "Invalid-Request",
    405: "Unsupported-Service",
    406: "Unsupported-Extension",
    407: "Invalid-Attribute-Value",
    501: "Administratively-Prohibited",
    502: "Request-Not-Routable",
    503: "Session-Context-Not-Found",
    504: "Session-Context-Not-Removable",
    505: "Other-Proxy-Processing-Error",
    506: "Resources-Unavailable",
    507: "Request-Initiated",
}

# CoaError.NAK is worded with its Error-Cause in CoaRequest.error_text.
_ERROR_MESSAGES = {
    CoaError.NO_ANSWER: _("No answer from the NAS within %(detail)s s."),
    CoaError.PORT_UNREACHABLE: _("The NAS refused the connection: nothing listens on its CoA port."),
    CoaError.BAD_AUTHENTICATOR: _(
        "The NAS's reply failed the authenticator check: is the shared secret the same on both sides?"
    ),
    CoaError.MALFORMED_REPLY: _("The NAS sent a malformed reply."),
    CoaError.SEND_ERROR: _("Cannot send to the NAS: %(detail)s"),
    CoaError.RECEIVE_ERROR: _("Cannot receive from the NAS: %(detail)s"),
    CoaError.UNENCODABLE: _("The request cannot be encoded: %(detail)s"),
}


class CoaRequest(models.Model):
    """A change pushed to a NAS for one session. Sent by the worker, retried with backoff; the NAS's NAK and
    its Error-Cause are kept (503: the session is already gone). A newer request for the same session that
    sets everything this one sets supersedes it while it waits (``network.coa.supersedes``)."""

    nas = models.ForeignKey(Nas, on_delete=models.PROTECT, related_name="coa_requests")
    session = models.ForeignKey(Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=20, choices=CoaKind.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=CoaReason.choices)
    # Attribute name → list of values, rendered by the NAS's vendor profile when the request was queued.
    attributes = models.JSONField(default=dict)
    status = models.CharField(_("status"), max_length=20, choices=CoaStatus.choices, default=CoaStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField()
    error_cause = models.PositiveIntegerField(_("Error-Cause"), null=True, blank=True)
    # A CoaError value; rows written before 2026-12 hold a message already worded in the worker's language.
    last_error = models.CharField(_("last error"), max_length=255, choices=CoaError.choices, blank=True)
    # The error's language-neutral parameter: the reply timeout in seconds, the OS error, the exception's type.
    error_detail = models.CharField(_("error detail"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("queued"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("CoA request")
        verbose_name_plural = _("CoA requests")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="network_coa_due_idx", condition=Q(status="pending")),
            models.Index(fields=["subscriber", "-created_at"], name="network_coa_subscriber_idx"),
            # /metrics counts the requests finished in the last hour (the table keeps every request ever sent).
            models.Index(fields=["finished_at"], name="network_coa_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reason} → {self.nas_id}"

    @property
    def error_text(self) -> str:
        """The last error in the active language, with the Error-Cause where the NAS gave one; "" if none."""
        if self.last_error == CoaError.NAK:
            if self.error_cause is None:
                return gettext("The NAS refused the request without giving a reason.")
            return gettext("The NAS refused the request: Error-Cause %(code)d (%(name)s).") % {
                "code": self.error_cause,
                "name": ERROR_CAUSES.get(self.error_cause, "?"),
            }
        message = _ERROR_MESSAGES.get(self.last_error)
        if message is None:
            return self.last_error  # written before errors were stored as codes: already worded
        return str(message) % {"detail": self.error_detail}


class AccessMarkKind(models.TextChoices):
    REDIRECT = "redirect", _("Redirected to the payment page")
    DENIED = "denied", _("Access denied")


class AccessMark(models.Model):
    """What the NAS have been told about a subscriber whose access state is not plain access: the payment-page
    redirect (``restricted``) or no access (``suspended``, ``blocked``, ``terminated``). The worker, and the
    handler of ``dunning.states_changed`` at once, compare these marks with dunning's states and push the
    difference: redirect on, Disconnect, or access back (DESIGN.md invariant 5). No row: normal access.

    The table keeps its old name (``network_debtormark``): ``network_write_sessions`` (migration 0010) reads it
    to leave a marked subscriber's days out of the days online, which holds for a denied subscriber too."""

    subscriber = models.OneToOneField(Subscriber, on_delete=models.CASCADE, related_name="+", primary_key=True)
    told = models.CharField(max_length=10, choices=AccessMarkKind.choices, default=AccessMarkKind.REDIRECT)
    since = models.DateTimeField()

    class Meta:
        db_table = "network_debtormark"
        verbose_name = _("access mark")
        verbose_name_plural = _("access marks")

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.told} since {self.since}"


class QuotaMark(models.Model):
    """A subscriber the NAS have been told is over this month's included traffic (the FUP speed). The worker
    compares this set with the traffic every minute and pushes the difference by CoA: the FUP speed when the
    quota is crossed, the plan's speed back when it no longer is (a new month, a plan without a quota), once
    for each crossing."""

    subscriber = models.OneToOneField(Subscriber, on_delete=models.CASCADE, related_name="+", primary_key=True)
    since = models.DateTimeField()

    class Meta:
        verbose_name = _("FUP speed")
        verbose_name_plural = _("FUP speeds")

    def __str__(self) -> str:
        return f"{self.subscriber_id} since {self.since}"


class RadiusNode(models.Model):
    """One running RADIUS process and its counters, written every few seconds for the console and
    ``/metrics`` (the processes may run on other hosts than the web)."""

    node = models.CharField(max_length=200, unique=True)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # {"<nas name>": {"accepts": n, "rejects_bad_password": n, "dropped_malformed": n, ...}, ...}
    counters = models.JSONField(default=dict)
    last_packet = models.JSONField(default=dict)
    accounting_queue = models.PositiveIntegerField(default=0)
    spool_backlog = models.BooleanField(default=False)
    # When the policy this process answers from was read from the database (a restored snapshot's time until
    # the database is back): /metrics shows its age, which grows while the process cannot reach the database.
    policy_as_of = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("RADIUS process")
        verbose_name_plural = _("RADIUS processes")

    def __str__(self) -> str:
        return self.node


# Registered with the network app, kept beside the code that writes them (network/monitoring).
from .monitoring.models import NasHealth, NasSample, PoolUsage  # noqa: E402, F401
