"""Bank statements imported from the 1C exchange format, and each of their lines with what became of it."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField

from .payment import Payment


class BankStatement(models.Model):
    """One statement file as uploaded. Its SHA-256 is unique: the same file uploaded again is this row, and
    nothing is imported twice. The counts say what its lines became (lines already taken in from an earlier,
    overlapping statement are ``repeated`` and belong to that statement)."""

    sha256 = models.CharField(_("SHA-256"), max_length=64, unique=True)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    encoding = models.CharField(_("encoding"), max_length=20)
    # What the file says it covers: the settlement account and the period.
    account = models.CharField(_("settlement account"), max_length=34, blank=True)
    date_from = models.DateField(_("from"), null=True, blank=True)
    date_to = models.DateField(_("to"), null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    uploaded_at = models.DateTimeField(_("uploaded"), db_index=True)
    documents = models.PositiveIntegerField(_("documents in the file"), default=0)
    credited = models.PositiveIntegerField(_("credited"), default=0)
    suspense = models.PositiveIntegerField(_("in suspense"), default=0)
    ambiguous = models.PositiveIntegerField(_("ambiguous"), default=0)
    broken = models.PositiveIntegerField(_("broken"), default=0)
    ignored = models.PositiveIntegerField(_("ignored"), default=0)
    repeated = models.PositiveIntegerField(_("already imported"), default=0)
    credited_amount = MoneyField(_("credited amount"), default=0)
    suspense_amount = MoneyField(_("amount in suspense"), default=0)

    class Meta:
        verbose_name = _("bank statement")
        verbose_name_plural = _("bank statements")
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return self.filename or self.sha256[:12]

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_FIELDS}


COUNT_FIELDS = ("documents", "credited", "suspense", "ambiguous", "broken", "ignored", "repeated")


class LineStatus(models.TextChoices):
    # What the import did with the line; the payment's own status says what happened to the money since
    # (a suspense payment assigned by staff is credited, the line stays "suspense": how it came in).
    CREDITED = "credited", _("Credited")
    # A subscriber was found, but the intake could not credit it (a closed account): in suspense.
    MATCHED = "matched", _("Matched, in suspense")
    SUSPENSE = "suspense", _("No subscriber found")
    AMBIGUOUS = "ambiguous", _("Several subscribers match")
    BROKEN = "broken", _("Cannot be read")
    IGNORED = "ignored", _("Not a payment to us")


class MatchRule(models.TextChoices):
    ACCOUNT_NUMBER = "account_number", _("Account number in the purpose")
    LEGACY_ACCOUNT = "legacy_account", _("Old account number in the purpose")
    CONTRACT = "contract", _("Contract number in the purpose")
    INN = "inn", _("Payer's INN")


class StatementLine(models.Model):
    """A document of a statement: an incoming payment taken in (credited, in suspense, ambiguous), an outgoing
    or foreign one ignored, or one that cannot be read, quarantined with its reason and raw text.

    ``key`` is the document's stable id (date, number, payer's account, amount, payer's INN; the raw text's
    hash for a broken one), unique across all statements: the same document in an overlapping statement adds
    no line. It is also the payment's ``external_id`` on the ``bank`` channel."""

    statement = models.ForeignKey(BankStatement, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField(_("position in the file"))
    key = models.CharField(_("document key"), max_length=100, unique=True)
    status = models.CharField(_("status"), max_length=20, choices=LineStatus.choices)
    rule = models.CharField(_("matched by"), max_length=20, choices=MatchRule.choices, blank=True)
    # Why a line is broken or ignored (a code, see views) and what was wrong (the bad value, the missing keys).
    reason_code = models.CharField(_("reason"), max_length=40, blank=True)
    reason_detail = models.CharField(_("details"), max_length=255, blank=True)
    number = models.CharField(_("document number"), max_length=40, blank=True)
    date = models.DateField(_("document date"), null=True, blank=True)
    received_on = models.DateField(_("received on"), null=True, blank=True)
    amount = MoneyField(_("amount"), null=True, blank=True)
    payer = models.CharField(_("payer"), max_length=255, blank=True)
    payer_account = models.CharField(_("payer's account"), max_length=34, blank=True)
    payer_inn = models.CharField(_("payer's INN"), max_length=12, blank=True)
    recipient_account = models.CharField(_("recipient's account"), max_length=34, blank=True)
    purpose = models.TextField(_("purpose of payment"), blank=True)
    # Subscriber ids the rule found when it found more than one.
    candidates = models.JSONField(_("candidates"), default=list, blank=True)
    raw = models.TextField(_("raw text"))
    payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="statement_line"
    )

    class Meta:
        verbose_name = _("statement line")
        verbose_name_plural = _("statement lines")
        ordering = ["statement", "position"]
        indexes = [models.Index(fields=["statement", "status"], name="payments_stline_status_idx")]

    def __str__(self) -> str:
        return f"{self.statement_id}:{self.position} {self.key}"
