"""Console forms of the integrations pages. Validation that matters lives in the actions; these parse input."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import DeliveryStatus, Endpoint, EventType, Scope


class EndpointForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    # A CharField, not a URLField: the action's check (actions.validate_url) decides, with its own code.
    url = forms.CharField(label=_("URL"), max_length=500, help_text=_("http:// or https:// address of the receiver."))
    event_types = forms.MultipleChoiceField(
        label=_("Event types"), choices=EventType.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    expires_on = forms.DateField(
        label=_("Expires on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Empty: never."),
    )


class DeliveryFilterForm(forms.Form):
    endpoint = forms.ModelChoiceField(label=_("Integration"), queryset=Endpoint.objects.all(), required=False)
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("Any")), *DeliveryStatus.choices], required=False)
    type = forms.ChoiceField(label=_("Event type"), choices=[("", _("Any")), *EventType.choices], required=False)
    event = forms.UUIDField(label=_("Event id"), required=False)
