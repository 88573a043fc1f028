"""Console forms of incidents: the incident (its areas typed one a line), a message to the affected, the
compensation's days."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm
from abonent.network.models import Nas
from abonent.notifications.models import Channel

from .models import Incident, IncidentKind
from .validation import AreaData, IncidentData

_RANGE = re.compile(r"^\s*([0-9]{1,6})\s*[-–—]\s*([0-9]{1,6})\s*$")
_ONE = re.compile(r"^\s*([0-9]{1,6})\s*$")
MAX_AREA_LINES = 100


def parse_areas(text: str) -> list[AreaData]:
    """One area a line: ``city``, ``city; street`` or ``city; street; 10-24`` (a range of house numbers, or one
    number). Raises ValidationError ``area_line_invalid`` naming the first line it cannot read."""
    areas = []
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if len(lines) > MAX_AREA_LINES:
        raise ValidationError(_("At most %(max)s lines.") % {"max": MAX_AREA_LINES}, code="too_many_areas")
    for number, line in enumerate(lines, 1):
        parts = [p.strip() for p in line.split(";")]
        if len(parts) > 3 or not parts[0]:
            raise ValidationError(
                _("Line %(n)s: write “city; street; 10-24”.") % {"n": number}, code="area_line_invalid"
            )
        low = high = None
        if len(parts) == 3 and parts[2]:
            found = _RANGE.match(parts[2]) or _ONE.match(parts[2])
            if found is None:
                raise ValidationError(
                    _("Line %(n)s: houses are a number or a range like 10-24.") % {"n": number},
                    code="area_line_invalid",
                )
            low = int(found.group(1))
            high = int(found.group(2)) if found.lastindex == 2 else low
        areas.append(AreaData(parts[0], parts[1] if len(parts) > 1 else "", low, high))
    return areas


def format_areas(incident: Incident) -> str:
    lines = []
    for area in incident.areas.all():
        parts = [area.city, area.street]
        if area.house_from is not None:
            parts.append(f"{area.house_from}-{area.house_to}")
        lines.append("; ".join(parts).rstrip("; "))
    return "\n".join(lines)


class IncidentForm(ConsoleForm):
    title = forms.CharField(label=_("Title"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=IncidentKind.choices)
    starts_at = forms.DateTimeField(
        label=_("Started"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    description = forms.CharField(
        label=_("Text for subscribers"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown on the portal's home page of every affected subscriber."),
    )
    nas = forms.ModelMultipleChoiceField(
        label=_("NAS"), queryset=Nas.objects.order_by("name"), required=False, widget=forms.SelectMultiple
    )
    areas = forms.CharField(
        label=_("Addresses"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One a line: “city”, “city; street” or “city; street; 10-24” (house numbers)."),
    )

    def clean_areas(self):
        return parse_areas(self.cleaned_data.get("areas", ""))

    def to_data(self) -> IncidentData:
        data = self.cleaned_data
        return IncidentData(
            title=data["title"],
            description=data["description"],
            kind=data["kind"],
            starts_at=data["starts_at"],
            nas_ids=[n.pk for n in data.get("nas") or []],
            areas=data.get("areas") or [],
        )


class MessageForm(ConsoleForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices, initial=Channel.SMS)
    subject = forms.CharField(label=_("Subject (e-mail)"), max_length=200, required=False)
    body = forms.CharField(label=_("Text"), max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class CompensationForm(ConsoleForm):
    # Parsed by the action (compensation.clean_days): its codes are the form's.
    days = forms.CharField(label=_("Days of fees to credit"), max_length=12)
