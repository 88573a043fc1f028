"""Console forms of the documents: the list's filters, a month to generate, a correction's reason."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm

from .models import DocumentKind


class MonthField(forms.CharField):
    """A month as ``YYYY-MM`` (what ``<input type="month">`` sends), cleaned to its first day."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 7)
        super().__init__(**kwargs)
        self.widget.input_type = "month"

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        return parse_month(value)


# Months a document may concern: 9999-12 would overflow every "the month after" (a 500, not an answer).
MIN_YEAR, MAX_YEAR = 1900, 2999


def parse_month(value: str) -> dt.date:
    try:
        year, month = str(value).split("-")
        if not (year.isascii() and month.isascii() and MIN_YEAR <= int(year) <= MAX_YEAR):
            raise ValueError(value)
        return dt.date(int(year), int(month), 1)
    except (TypeError, ValueError):
        raise ValidationError(_("Enter a month as YYYY-MM."), code="invalid_month") from None


class DocumentFilterForm(ConsoleForm):
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("Any")), *DocumentKind.choices])
    month = MonthField(label=_("Month"), required=False)
    account = forms.CharField(label=_("Account number"), required=False, max_length=20)


class GenerateForm(ConsoleForm):
    month = MonthField(label=_("Month closed"))


class CorrectForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=500)


class ExportForm(ConsoleForm):
    month = MonthField(label=_("Month"))
