"""The cash desk: a cashier's day (open at the first payment, closed with its totals frozen) and the one-time
tokens of console forms."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField


class CashDay(models.Model):
    """One cashier's working day at the cash desk, by the operator's local date.

    Opened by the cashier's first payment of the day (or by closing a day without payments); closing it freezes
    its totals for the cash report. After that the cashier can neither take payments dated that day nor cancel
    the day's payments: the cash has been counted and handed over. The row is locked by every payment, cancel and
    close of the day, so a close cannot slip between a payment and its count.
    """

    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("cashier"), on_delete=models.PROTECT, related_name="+"
    )
    date = models.DateField(_("date"))
    opened_at = models.DateTimeField(_("opened"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    # Frozen at the close: payments taken (cancelled ones included in the count and shown apart), cancellations,
    # refunds paid out in cash, and what should be in the drawer (payments − cancelled − refunds).
    payments_count = models.PositiveIntegerField(_("payments"), default=0)
    payments_total = MoneyField(_("payments total"), default=0)
    cancelled_count = models.PositiveIntegerField(_("cancelled"), default=0)
    cancelled_total = MoneyField(_("cancelled total"), default=0)
    refunds_total = MoneyField(_("refunds paid out"), default=0)
    net_total = MoneyField(_("cash to hand over"), default=0)
    # Method → amount of the payments not cancelled, as text ("cash": "1300.00").
    totals_by_method = models.JSONField(_("totals by method"), default=dict, blank=True)

    class Meta:
        verbose_name = _("cash day")
        verbose_name_plural = _("cash days")
        ordering = ["-date", "cashier_id"]
        constraints = [
            models.UniqueConstraint(fields=["cashier", "date"], name="payments_cash_day_uniq"),
        ]
        indexes = [models.Index(fields=["date"], name="payments_cash_day_date_idx")]

    def __str__(self) -> str:
        return f"{self.cashier_id}:{self.date.isoformat()}"

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class FormSubmission(models.Model):
    """A console form's one-time token, used once: the unique ``token`` written in the transaction of the action the
    form asked for makes a double click or a resubmitted page do it once. If the action fails the row goes with it,
    and the corrected form can be sent again with the same token."""

    token = models.CharField(max_length=64)
    kind = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("form submission")
        verbose_name_plural = _("form submissions")
        constraints = [
            models.UniqueConstraint(fields=["token"], name="payments_form_token_uniq"),
            models.CheckConstraint(condition=~Q(token=""), name="payments_form_token_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.token}"
