"""The portal's request forms: a new request, a reply. And ``PortalForm``, the Bootstrap-styled base of the portal's
forms (full-size controls: a finger, not a mouse)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.helpdesk import rules
from abonent.helpdesk.models import TicketCategory


class PortalForm(forms.Form):
    """A form whose widgets carry Bootstrap's classes and whose invalid fields are marked for assistive technology."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.RadioSelect | forms.CheckboxSelectMultiple | forms.HiddenInput):
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
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


class RequestForm(PortalForm):
    category = forms.ChoiceField(label=_("What is it about"), choices=TicketCategory.choices)
    subject = forms.CharField(label=_("In a few words"), max_length=rules.SUBJECT_MAX_LENGTH)
    text = forms.CharField(
        label=_("Tell us more"),
        max_length=rules.TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("When it started, what you already tried, when we can call you."),
    )
    address = forms.CharField(
        label=_("Address to connect"),
        required=False,
        max_length=rules.ADDRESS_MAX_LENGTH,
        help_text=_("For a connection request: city, street, house and flat."),
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )

    def clean(self):
        data = super().clean()
        # The action refuses it too; said here as well, so that every missing field is shown at once.
        if data.get("category") == TicketCategory.CONNECTION_REQUEST and not (data.get("address") or "").strip():
            self.add_error("address", forms.ValidationError(_("Give the address to connect."), code="address_required"))
        return data


class ReplyForm(PortalForm):
    text = forms.CharField(
        label=_("Your message"), max_length=rules.TEXT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 4})
    )
