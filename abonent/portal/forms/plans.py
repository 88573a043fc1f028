"""The plan and services pages' forms. A confirmation form carries, hidden, the amounts its page showed: they are
compared with what the action does (``plans_data``), so a tampered or stale form charges nothing it did not show.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import MoneyDecimalField

from ..plans_data import SeenPlanChange
from ..services_data import SeenFreeze, SeenPromised, SeenTurbo, SeenUnfreeze

# numeric(14, 2), as the ledger keeps money.
MONEY = {"max_digits": 14, "decimal_places": 2}


def _shown(**kwargs) -> forms.DecimalField:
    """An amount the page showed, sent back as the page rendered it (a plain decimal, never localised)."""
    return forms.DecimalField(widget=forms.HiddenInput, **MONEY, **kwargs)


def _shown_date(**kwargs) -> forms.DateField:
    return forms.DateField(input_formats=["%Y-%m-%d"], widget=forms.HiddenInput, **kwargs)


def _shown_number() -> forms.IntegerField:
    # Not required: a page rendered before the field existed still confirms (the term is then not compared).
    return forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1, required=False)


class PlanChangeConfirmForm(forms.Form):
    immediate = forms.TypedChoiceField(
        choices=[("1", "1"), ("0", "0")], coerce=lambda value: value == "1", widget=forms.HiddenInput
    )
    effective_on = _shown_date()
    catch_up = _shown(required=False)
    credit = _shown()
    charge = _shown()
    balance_after = _shown()

    @classmethod
    def of(cls, preview) -> PlanChangeConfirmForm:
        return cls(
            initial={
                "immediate": "1" if preview.immediate else "0",
                "effective_on": preview.effective_on.isoformat(),
                "catch_up": preview.catch_up,
                "credit": preview.credit,
                "charge": preview.charge,
                "balance_after": preview.balance_after,
            }
        )

    def seen(self) -> SeenPlanChange:
        data = self.cleaned_data
        return SeenPlanChange(
            net=None if data["catch_up"] is None else data["catch_up"] + data["charge"] - data["credit"],
            immediate=data["immediate"],
            effective_on=data["effective_on"],
            catch_up=data["catch_up"],
            credit=data["credit"],
            charge=data["charge"],
            balance_after=data["balance_after"],
        )


class FreezeDaysForm(forms.Form):
    """The days of a freeze, asked on the services page (a GET to the freeze's preview)."""

    days = forms.IntegerField(
        label=_("Days"),
        min_value=1,
        max_value=366,
        widget=forms.NumberInput(attrs={"class": "form-control", "inputmode": "numeric"}),
    )


class FreezeConfirmForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=366, widget=forms.HiddenInput)
    starts_on = _shown_date(required=False)
    ends_on = _shown_date(required=False)
    fee = _shown()
    credit = _shown()
    balance_after = _shown()

    @classmethod
    def of(cls, preview) -> FreezeConfirmForm:
        return cls(
            initial={
                "days": preview.days,
                "starts_on": preview.starts_on.isoformat(),
                "ends_on": preview.ends_on.isoformat(),
                "fee": preview.fee,
                "credit": preview.credit,
                "balance_after": preview.balance_after,
            }
        )

    def seen(self) -> SeenFreeze:
        data = self.cleaned_data
        return SeenFreeze(
            fee=data["fee"],
            credit=data["credit"],
            starts_on=data["starts_on"],
            ends_on=data["ends_on"],
            balance_after=data["balance_after"],
        )


class UnfreezeConfirmForm(forms.Form):
    net = _shown()
    balance_after = _shown()

    @classmethod
    def of(cls, preview) -> UnfreezeConfirmForm:
        return cls(initial={"net": preview.net, "balance_after": preview.balance_after})

    def seen(self) -> SeenUnfreeze:
        return SeenUnfreeze(net=self.cleaned_data["net"], balance_after=self.cleaned_data["balance_after"])


class PromisedPaymentForm(forms.Form):
    amount = MoneyDecimalField(
        label=_("Amount"),
        required=False,
        min_value=0,
        **MONEY,
        localize=True,
        help_text=_("Empty: the most the policy allows."),
        widget=forms.TextInput(attrs={"class": "form-control", "inputmode": "decimal", "autocomplete": "off"}),
    )
    fee = _shown(min_value=0)
    days = _shown_number()

    def seen(self) -> SeenPromised:
        return SeenPromised(fee=self.cleaned_data["fee"], days=self.cleaned_data["days"])


class TurboConfirmForm(forms.Form):
    price = _shown(min_value=0)
    hours = _shown_number()
    download_kbps = _shown_number()
    upload_kbps = _shown_number()

    @classmethod
    def of(cls, preview) -> TurboConfirmForm:
        turbo = preview.turbo
        return cls(
            initial={
                "price": preview.price,
                "hours": turbo.hours,
                "download_kbps": turbo.download_kbps,
                "upload_kbps": turbo.upload_kbps,
            }
        )

    def seen(self) -> SeenTurbo:
        data = self.cleaned_data
        return SeenTurbo(data["price"], data["hours"], data["download_kbps"], data["upload_kbps"])
