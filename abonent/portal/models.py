"""The portal's login: one account per subscriber, its sessions (browser cookies and API tokens alike), the
one-time codes that set a password, and the attempts that lock a login out."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.subscribers.models import Subscriber


class PortalAccount(models.Model):
    """A subscriber's portal password. The row exists from the first code sent or password set; an empty
    ``password`` means none was set yet (the first login is by a code)."""

    subscriber = models.OneToOneField(Subscriber, primary_key=True, on_delete=models.CASCADE, related_name="portal")
    # Django's hasher string (Argon2 in production); never the password itself.
    password = models.CharField(max_length=200, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("portal account")
        verbose_name_plural = _("portal accounts")

    def __str__(self) -> str:
        return str(self.subscriber_id)

    @property
    def has_password(self) -> bool:
        return bool(self.password)


class SessionKind(models.TextChoices):
    WEB = "web", _("Browser")
    API = "api", _("App (API token)")


class PortalSession(models.Model):
    """One signed-in browser or one API token of a subscriber. Only the SHA-256 of the secret is kept: the
    cookie or the bearer token holds the secret itself. A session ends when it is idle too long, reaches its
    absolute end, or is revoked (log out, log out everywhere, a password change)."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="portal_sessions")
    kind = models.CharField(max_length=10, choices=SessionKind.choices, default=SessionKind.WEB)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("portal session")
        verbose_name_plural = _("portal sessions")
        indexes = [
            models.Index(fields=["subscriber"], name="portal_session_live_idx", condition=Q(revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class CodePurpose(models.TextChoices):
    # The first login and a forgotten password are the same thing: prove the phone or e-mail, set a password.
    SET_PASSWORD = "set_password", _("Set a password")
    # A new phone or e-mail typed in the profile: it becomes the contact only with the code sent to it.
    CONFIRM_CONTACT = "confirm_contact", _("Confirm a new phone or e-mail")


class CodeChannel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")


class OneTimeCode(models.Model):
    """A code sent to the subscriber's phone or e-mail. Only its hash is kept; it works once, until
    ``expires_at``, for at most a few wrong tries; a newer code for the same purpose replaces it."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="portal_codes")
    purpose = models.CharField(max_length=20, choices=CodePurpose.choices)
    channel = models.CharField(max_length=10, choices=CodeChannel.choices)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # Where a ``confirm_contact`` code went: the new phone (E.164) or e-mail it proves. Empty for the other purposes
    # (their code goes to the contract's own address).
    address = models.CharField(max_length=254, blank=True)

    class Meta:
        verbose_name = _("one-time code")
        verbose_name_plural = _("one-time codes")
        indexes = [models.Index(fields=["subscriber", "purpose", "created_at"], name="portal_code_sub_idx")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.purpose} {self.created_at:%Y-%m-%d %H:%M}"


class LoginAttempt(models.Model):
    """One try to log in or to use a code, by what was typed (normalised) and from where: failures within a
    window lock that identifier, and separately that address, out."""

    identifier = models.CharField(max_length=100)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # What the per-address allowances count by: the IPv4 address, or the /64 of an IPv6 one (one home connection
    # gets a whole /64 and may use any address in it). Empty when the address is unknown.
    network = models.CharField(max_length=43, blank=True, default="")
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField(default=False)
    kind = models.CharField(max_length=10, default="password")  # password | code | send | lookup

    class Meta:
        verbose_name = _("portal login attempt")
        verbose_name_plural = _("portal login attempts")
        indexes = [
            models.Index(fields=["identifier", "attempted_at"], name="portal_attempt_id_idx"),
            models.Index(fields=["network", "attempted_at"], name="portal_attempt_net_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.identifier}@{self.ip_address} {self.attempted_at:%Y-%m-%d %H:%M:%S}"


class ShownPreview(models.Model):
    """The terms of a money-moving preview as the app was last shown them through one token (a plan change, a
    freeze): the confirmation compares all of them with what it does, although the app sends back only the main
    amount (issue 15: amounts shown = amounts charged; ``portal.as_seen``). One row per token, kind and subject
    (``<subscription>:<plan>``, ``<subscription>:<days>``), replaced by each new preview; pruned after a week with
    the login records."""

    session = models.ForeignKey(PortalSession, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)
    subject = models.CharField(max_length=100)
    terms = models.JSONField()
    shown_at = models.DateTimeField()

    class Meta:
        verbose_name = _("shown preview")
        verbose_name_plural = _("shown previews")
        constraints = [
            models.UniqueConstraint(fields=["session", "kind", "subject"], name="portal_shown_preview_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.kind} {self.subject}"
