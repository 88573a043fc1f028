"""Payment agents: terminal networks and bank apps that take money for us and tell us with ``check``/``pay``."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField

# The channel is ``agent:<code>`` (Payment.channel holds 40 characters) and the code is part of the agent's URL.
AGENT_CODE_MAX = 30
agent_code_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*\Z",
    _("Latin lower-case letters, digits, '-' and '_', starting with a letter or digit."),
    code="agent_code",
)


def hash_secret(secret: str, salt: str | None = None) -> str:
    """``salt$hex(HMAC-SHA256(salt, secret))``. A fast hash on purpose: the secret is 32 random bytes we generated
    (no dictionary to try), and the protocol endpoint checks it on every one of ≥ 1,000 payments a second, where
    Argon2's deliberate 50 ms would be the whole budget."""
    salt = salt or secrets.token_hex(16)
    digest = hmac.new(salt.encode(), secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"{salt}${digest}"


def secret_matches(secret: str, stored: str) -> bool:
    salt, sep, _digest = stored.partition("$")
    if not sep or not secret:
        hmac.compare_digest(stored, stored)  # the same work for a missing secret
        return False
    return hmac.compare_digest(hash_secret(secret, salt), stored)


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The CIDR list as the form keeps it: one network per line (commas and spaces also separate).
    Raises ``ValueError`` on a bad one."""
    items = text.replace(",", " ").split()
    return [ipaddress.ip_network(item, strict=False) for item in items]


class Agent(models.Model):
    """A payment agent (a terminal network, a bank app) under contract: it takes money from subscribers and
    reports each payment to ``/pay/agents/<code>/`` with the QIWI/OSMP ``check``/``pay`` protocol. Its payments
    are ``Payment`` rows of channel ``agent:<code>`` and pass through that channel's cash account, which the
    agent's transfers settle (the daily reconciliation report says how much, net of commission).

    The caller must come from one of ``networks`` (none: everyone refused) AND present ``login`` and the secret
    whose hash is ``secret_hash``.
    """

    code = models.CharField(
        _("code"), max_length=AGENT_CODE_MAX, unique=True, validators=[agent_code_validator], help_text=_("In the URL.")
    )
    name = models.CharField(_("name"), max_length=200)
    inn = models.CharField(_("INN"), max_length=12, blank=True)
    contract = models.CharField(_("contract"), max_length=200, blank=True)
    active = models.BooleanField(_("active"), default=True)
    login = models.CharField(_("login"), max_length=100)
    secret_hash = models.CharField(max_length=200, editable=False)
    secret_set_at = models.DateTimeField(_("secret set"), null=True, blank=True, editable=False)
    networks = models.TextField(
        _("allowed networks"), blank=True, help_text=_("CIDR, one per line. None: every request is refused.")
    )
    # Commission the agent keeps from each payment: percent of it plus a fixed sum, but not less than the minimum.
    commission_percent = models.DecimalField(
        _("commission, %"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    commission_fixed = MoneyField(_("commission per payment"), default=Decimal("0"))
    commission_min = MoneyField(_("minimum commission"), default=Decimal("0"))
    min_sum = MoneyField(_("smallest payment"), default=Decimal("1.00"))
    max_sum = MoneyField(_("largest payment"), default=Decimal("15000.00"))
    # On: ``check`` and ``pay`` for a closed account answer 79 and the money stays with the agent. Off: ``check``
    # answers 0 and ``pay`` takes the money into suspense (closed_account) for staff to assign or return.
    active_accounts_only = models.BooleanField(_("only active accounts"), default=True)
    # ``fields`` in the ``check`` answer: the subscriber's masked name and balance on the terminal's screen.
    show_details = models.BooleanField(_("show name and balance at check"), default=False)
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, help_text=_("Of txn_date. Empty: the installation's.")
    )
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("payment agent")
        verbose_name_plural = _("payment agents")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_sum__gt=0) & Q(max_sum__gte=models.F("min_sum")), name="payments_agent_limits"
            ),
            models.CheckConstraint(
                condition=Q(commission_fixed__gte=0) & Q(commission_min__gte=0), name="payments_agent_commission"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def channel(self) -> str:
        return f"agent:{self.code}"
