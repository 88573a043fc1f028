from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Step(models.TextChoices):
    """The first-run wizard's steps, in order (``steps.STEPS`` says what each asks)."""

    COMPANY = "company", _("Company details")
    TAXES = "taxes", _("Taxes and VAT")
    REGION = "region", _("Currency and time zone")
    BRANCHES = "branches", _("Branches")
    NAS = "nas", _("First NAS")
    PLANS = "plans", _("First plans")
    PAYMENTS = "payments", _("Payment channels")


class SetupStep(models.Model):
    """One step of the first-run wizard an administrator completed: which, when, by whom, and what later screens
    need of it (the NAS it created, the address that NAS reaches Abonent at). One row a step: done again, it is
    updated, so the wizard resumes at the first step without a row."""

    step = models.CharField(_("step"), max_length=20, choices=Step.choices, unique=True)
    completed_at = models.DateTimeField(_("completed"))
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("completed by"), null=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("set-up step")
        verbose_name_plural = _("set-up steps")
        ordering = ["completed_at"]

    def __str__(self) -> str:
        return self.get_step_display()
