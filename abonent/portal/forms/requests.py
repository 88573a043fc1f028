"""The portal's request forms: a new request, a reply. And ``PortalForm``, the Bootstrap-styled base of the portal's
forms (full-size controls: a finger, not a mouse)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import StyledForm
from abonent.helpdesk import rules
from abonent.helpdesk.models import TicketCategory


class PortalForm(StyledForm):
    """The portal's forms: full-size controls for fingers, no colon after the labels."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


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

    attachment = forms.FileField(
        label=_("A photo or a file"),
        required=False,
        max_length=500,
        help_text=_("Optional: a screenshot, a photo of the router, a PDF or a text file."),
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
    attachment = forms.FileField(label=_("A photo or a file"), required=False, max_length=500)
