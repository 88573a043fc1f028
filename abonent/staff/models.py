import hashlib

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .permissions import Perm, Role, allowed_branch_ids, has_perm


class StaffUserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, username, password=None, **extra):
        if not username:
            raise ValueError("username is required")
        user = self.model(username=self.model.normalize_username(username), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username, password=None, **extra):
        extra.setdefault("role", Role.ADMIN)
        return self.create_user(username, password, **extra)


class StaffUser(AbstractBaseUser):
    """A person (or an integration's service account) working in the console or the API."""

    username = models.CharField(_("login"), max_length=150, unique=True, validators=[UnicodeUsernameValidator()])
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.OPERATOR)
    branches = models.ManyToManyField(
        "core.Branch",
        verbose_name=_("branches"),
        blank=True,
        related_name="staff_users",
        help_text=_("Limit this user to these branches. Leave empty for all branches."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_service_account = models.BooleanField(
        _("service account"), default=False, help_text=_("An integration that uses API tokens and cannot log in.")
    )
    date_joined = models.DateTimeField(_("created"), auto_now_add=True)
    # Mirrors "holds a confirmed TOTP device" so the two-factor middleware can tell on every console request
    # without a query; only the actions in ``two_factor`` change the devices, and they keep this in step.
    two_factor_enabled = models.BooleanField(_("two-factor authentication"), default=False, editable=False)

    objects = StaffUserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.full_name or self.username

    def get_full_name(self) -> str:
        return self.full_name or self.username

    def get_short_name(self) -> str:
        return self.username

    @property
    def is_staff(self) -> bool:
        """Django admin (/staff/admin/) is for administrators without a branch limit: branches, groups, staff
        users, tokens. Its pages know no branches: a branch-limited administrator there listed every branch's
        sessions, logins and authentication attempts, and could take its own branch limit off (issue 11
        review). Such an administrator works in the console, which keeps to its branches."""
        return has_perm(self, Perm.STAFF_MANAGE) and allowed_branch_ids(self) is None

    @property
    def is_superuser(self) -> bool:
        return False

    def has_perm(self, perm, obj=None) -> bool:
        # Admin-site model permissions ("core.change_branch") go to administrators; domain permissions
        # ("subscriber.edit") come from the role table.
        if "_" in perm.partition(".")[2] and perm not in {str(p) for p in Perm}:
            return self.is_staff
        return has_perm(self, perm)

    def has_perms(self, perm_list, obj=None) -> bool:
        return all(self.has_perm(p) for p in perm_list)

    def has_module_perms(self, app_label) -> bool:
        return self.is_staff


class LoginAttempt(models.Model):
    """One console login attempt; failures within a window lock the login and the address out."""

    username = models.CharField(max_length=150)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("console login attempt")
        verbose_name_plural = _("console login attempts")
        indexes = [
            models.Index(fields=["username", "attempted_at"], name="staff_login_user_idx"),
            models.Index(fields=["ip_address", "attempted_at"], name="staff_login_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.username}@{self.ip_address} {self.attempted_at:%Y-%m-%d %H:%M:%S}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the REST API. Only its SHA-256 is stored; the token is shown once at creation."""

    user = models.ForeignKey(StaffUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, help_text=_("The first characters, to tell tokens apart."))
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
