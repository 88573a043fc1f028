import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import get_format
from django.utils.translation import gettext_lazy as _

ASCII_DIGITS = frozenset("0123456789")


class AsciiDecimalField(forms.DecimalField):
    """A number typed with the digits 0–9 only: Django's DecimalField reads "５" (full-width) or "٥" (Arabic-Indic)
    as 5, and an amount must be what the operator sees on the keyboard and the receipt."""

    default_error_messages = {"ascii_digits": _("Type the amount with the digits 0–9.")}

    def to_python(self, value):
        if isinstance(value, str) and any(ch.isdigit() and ch not in ASCII_DIGITS for ch in value):
            raise ValidationError(self.error_messages["ascii_digits"], code="amount_invalid")
        if isinstance(value, str) and self.localize:
            value = _without_thousands(value)
        return super().to_python(value)


def _without_thousands(text: str) -> str:
    """``1 000,5`` (ru) or ``1,000.5`` (en) without the thousands separator. Django strips it only with
    USE_THOUSAND_SEPARATOR on, which is off (settings.py says why): a localized field reads what the operator
    types as before."""
    thousands = get_format("THOUSAND_SEPARATOR")
    for separator in {" ", "\u00a0", "\u202f", thousands}:
        if separator and separator != get_format("DECIMAL_SEPARATOR"):
            text = text.replace(separator, "")
    return text


class MoneyDecimalField(AsciiDecimalField):
    """An amount of money typed with a comma or a point as the decimal mark whatever the language, spaces
    between thousands allowed. Not Django's localized parsing: in English it takes the comma for a thousands
    separator and reads "650,00" as 65 000; nor ``Decimal``'s own, which reads "1e3" as 1 000."""

    _TEXT = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")

    def to_python(self, value):
        if isinstance(value, str):
            text = value.strip()
            for space in (" ", "\u00a0", "\u202f"):
                text = text.replace(space, "")
            if text and not self._TEXT.fullmatch(text):
                if any(ch.isdigit() and ch not in ASCII_DIGITS for ch in text):
                    raise ValidationError(self.error_messages["ascii_digits"], code="amount_invalid")
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            value = text.replace(",", ".")
        return super().to_python(value)


class StyledForm(forms.Form):
    """A form whose widgets carry Bootstrap classes, so templates render ``{{ field }}`` as is, and whose invalid
    fields are marked for the eye (``is-invalid``) and for assistive technology (``aria-invalid``)."""

    input_class = "form-control"
    select_class = "form-select"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.RadioSelect | forms.CheckboxSelectMultiple | forms.HiddenInput):
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = self.select_class
            else:
                css = self.input_class
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def is_valid(self) -> bool:
        valid = super().is_valid()
        self.mark_invalid()
        return valid

    def mark_invalid(self) -> None:
        """Mark the fields with errors (also those an action's refusal put on the form after validation)."""
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                if "is-invalid" not in attrs.get("class", ""):
                    attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
                attrs["aria-invalid"] = "true"


class ConsoleForm(StyledForm):
    """The console's forms: small controls, to fit the card's panels."""

    input_class = "form-control form-control-sm"
    select_class = "form-select form-select-sm"


def apply_action_errors(form: forms.Form, exc: ValidationError, field_map: dict[str, str] | None = None) -> None:
    """Put an action's ValidationError on the form fields it names (or on the form when it names none)."""
    field_map = field_map or {}
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        target = field_map.get(name, name)
        form.add_error(target if target in form.fields else None, errors)
