from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from . import requisites


class AuditEvent(models.Model):
    """One change made by a person or a process: who, what, when, the fields before and after, and why.

    Written by every action in the same transaction as the change, so a change without its audit row
    cannot commit. Rows are never edited.
    """

    created_at = models.DateTimeField(_("time"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("staff user"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Processes (billing run, import, RADIUS) have no user: they name themselves here.
    actor_label = models.CharField(_("actor"), max_length=150)
    action = models.CharField(_("action"), max_length=100, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100)
    object_id = models.CharField(_("object id"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=255, blank=True)
    # The subscriber the change belongs to, so the card can show its whole history in one query.
    subscriber_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="core_audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"


class ScheduledRun(models.Model):
    """One slot of a periodic job that has been enqueued.

    The unique ``(job, slot)`` pair is what makes several ``abonent worker`` processes enqueue each slot
    exactly once: the loser of the insert race gets an IntegrityError and enqueues nothing.
    """

    job = models.CharField(max_length=100)
    slot = models.DateTimeField()
    enqueued_at = models.DateTimeField()
    task_result_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("scheduled run")
        verbose_name_plural = _("scheduled runs")
        constraints = [models.UniqueConstraint(fields=["job", "slot"], name="core_scheduledrun_job_slot_uniq")]
        ordering = ["-slot"]

    def __str__(self) -> str:
        return f"{self.job}@{self.slot:%Y-%m-%d %H:%M}"


class Branch(models.Model):
    """A branch (филиал): a town or region the ISP operates in.

    Subscribers, and later NAS and cash desks, belong to one; staff may be limited to some, so a
    multi-town ISP can migrate and operate one branch at a time.
    """

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    # The branch's local time (an IANA name, "Asia/Yekaterinburg"); blank: the installation's TIME_ZONE. Messages
    # to its subscribers keep to the quiet hours of this zone.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """A code differing from another branch's by case only is the same code to an import or a report. (An
        exact duplicate is the unique check's to report.)"""
        if self.code and (
            Branch.objects.filter(code__iexact=self.code).exclude(code=self.code).exclude(pk=self.pk).exists()
        ):
            raise ValidationError(
                {"code": ValidationError(_("Another branch has this code in other letter case."), code="code_case")}
            )


class Sequence(models.Model):
    """A named counter (account numbers, later invoice numbers), advanced under a row lock.

    Works the same on SQLite and PostgreSQL, hands out blocks for bulk work, and never reuses a value.
    """

    name = models.CharField(max_length=50, unique=True)
    last_value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("number sequence")
        verbose_name_plural = _("number sequences")

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"


class TaxSystem(models.TextChoices):
    """The company's tax system, as a cash receipt names it (ATOL ``sno``)."""

    OSN = "osn", _("General (OSN)")
    USN_INCOME = "usn_income", _("Simplified, on income (USN 6)")
    USN_INCOME_OUTCOME = "usn_income_outcome", _("Simplified, income less expenses (USN 15)")
    ESN = "esn", _("Unified agricultural tax (ESKhN)")
    PATENT = "patent", _("Patent")


class VatMode(models.TextChoices):
    """How VAT is charged: the dated standard rate (ABONENT_FISCAL_VAT_RATES), none, or a simplified system's
    reduced rate (since 2025 a USN company past the income threshold pays VAT at 5 or 7 percent)."""

    AUTO = "auto", _("Standard rate (20, from 2026 22 percent; none on a simplified system)")
    NONE = "none", _("No VAT")
    VAT5 = "vat105", _("5 percent (simplified system)")
    VAT7 = "vat107", _("7 percent (simplified system)")


class CompanyProfile(models.Model):
    """The one row of the ISP's own details: who it is on every invoice, act and receipt, its taxes, its currency
    and time zone. Written by the first-run wizard (abonent/setup); until it exists, the ``ABONENT_COMPANY_*``
    settings stand in (``core.company``). Documents copy the seller block when issued, so a change is not
    retroactive."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    name = models.CharField(_("legal name"), max_length=255, help_text=_("As registered: ООО «Связь», ИП Петров П. П."))
    inn = models.CharField(_("INN"), max_length=12, validators=[requisites.validate_inn])
    kpp = models.CharField(
        _("KPP"), max_length=9, blank=True, validators=[requisites.validate_kpp], help_text=_("Organisations only.")
    )
    ogrn = models.CharField(_("OGRN / OGRNIP"), max_length=15, blank=True, validators=[requisites.validate_ogrn])
    address = models.CharField(_("legal address"), max_length=500)
    phone = models.CharField(
        _("support phone"), max_length=32, blank=True, help_text=_("The number subscribers are told to call.")
    )
    bank = models.CharField(_("bank"), max_length=255, blank=True)
    bik = models.CharField(_("BIK"), max_length=9, blank=True, validators=[requisites.validate_bik])
    account = models.CharField(
        _("settlement account"), max_length=20, blank=True, validators=[requisites.validate_account_digits]
    )
    corr_account = models.CharField(
        _("correspondent account"), max_length=20, blank=True, validators=[requisites.validate_account_digits]
    )
    director = models.CharField(_("director"), max_length=150, blank=True, help_text=_("Who signs the documents."))
    accountant = models.CharField(_("chief accountant"), max_length=150, blank=True)
    # Empty until the wizard's tax step: the ABONENT_FISCAL_SNO and ABONENT_FISCAL_VAT settings stand in.
    tax_system = models.CharField(_("tax system"), max_length=20, choices=TaxSystem.choices, blank=True)
    vat_mode = models.CharField(_("VAT"), max_length=10, choices=VatMode.choices, blank=True)
    # What the installation was set up for; the processes run with ABONENT_CURRENCY and ABONENT_TIME_ZONE from
    # their environment, and the wizard says which lines to change when the two differ.
    currency = models.CharField(_("currency"), max_length=3, blank=True, validators=[requisites.validate_currency])
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, validators=[requisites.validate_time_zone])
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("company details")
        verbose_name_plural = _("company details")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="core_companyprofile_singleton")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The requisites against each other: an organisation (10-digit INN) has a KPP and a 13-digit OGRN, an
        individual entrepreneur (12 digits) neither a KPP nor an OGRN but a 15-digit OGRNIP; the accounts' control
        keys against the BIK."""
        errors: dict[str, ValidationError] = {}
        organisation = len(self.inn) == 10
        if organisation and not self.kpp:
            errors["kpp"] = ValidationError(_("An organisation has a KPP: give it."), code="kpp_required")
        if len(self.inn) == 12 and self.kpp:
            errors["kpp"] = ValidationError(_("An individual entrepreneur has no KPP."), code="kpp_not_expected")
        if self.ogrn and len(self.inn) in (10, 12) and len(self.ogrn) != (13 if organisation else 15):
            errors["ogrn"] = ValidationError(
                _("An organisation has a 13-digit OGRN.")
                if organisation
                else _("An entrepreneur has a 15-digit OGRNIP."),
                code="ogrn_kind",
            )
        bank_fields = {"bank": self.bank, "bik": self.bik, "account": self.account, "corr_account": self.corr_account}
        if any(bank_fields.values()):
            for field, value in bank_fields.items():
                if not value:
                    errors.setdefault(
                        field, ValidationError(_("Give all four bank details, or none."), code="bank_incomplete")
                    )
        if requisites.is_ascii_digits(self.bik, 9):
            if len(self.account) == 20 and not requisites.account_key_is_valid(self.bik, self.account):
                errors.setdefault(
                    "account",
                    ValidationError(
                        _("This account does not match the BIK (its control key is wrong): check both."),
                        code="account_key",
                    ),
                )
            if len(self.corr_account) == 20 and not requisites.account_key_is_valid(
                self.bik, self.corr_account, correspondent=True
            ):
                errors.setdefault(
                    "corr_account",
                    ValidationError(
                        _("This correspondent account does not match the BIK (its control key is wrong)."),
                        code="corr_account_key",
                    ),
                )
        simplified = self.tax_system in (TaxSystem.USN_INCOME, TaxSystem.USN_INCOME_OUTCOME)
        if self.vat_mode in (VatMode.VAT5, VatMode.VAT7) and not simplified:
            errors["vat_mode"] = ValidationError(
                _("The 5 and 7 percent rates are for a simplified tax system only."), code="vat_rate_not_simplified"
            )
        if self.vat_mode and not self.tax_system:
            errors["tax_system"] = ValidationError(_("Choose the tax system."), code="tax_system_required")
        if errors:
            raise ValidationError(errors)
