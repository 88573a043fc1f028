"""What opening or changing an incident takes, checked before anything is written: one ValidationError naming each
bad field with a stable code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.network.models import Nas

from .models import IncidentKind

MAX_AREAS = 100
MAX_HOUSE = 100_000
MAX_NAS = 50
# How far from now an incident may start: a year back (recording an old one) or ahead (planned work). Beyond is a typo,
# and a year 1 or 9999 would overflow the date arithmetic of the affected set.
MAX_START_DISTANCE = dt.timedelta(days=366)


@dataclass(frozen=True)
class AreaData:
    city: str
    street: str = ""
    house_from: int | None = None
    house_to: int | None = None


@dataclass
class IncidentData:
    title: str
    description: str
    kind: str
    starts_at: dt.datetime | None
    nas_ids: list[int] = field(default_factory=list)
    areas: list[AreaData] = field(default_factory=list)


def _error(message: str, code: str) -> ValidationError:
    return ValidationError(message, code=code)


def _clean_area(area: AreaData) -> AreaData | ValidationError:
    city, street = (area.city or "").strip(), (area.street or "").strip()
    if not city:
        return _error(_("Each area needs a city."), "area_city_required")
    if len(city) > 100 or len(street) > 150:
        return _error(_("A city or a street is too long."), "area_too_long")
    low, high = area.house_from, area.house_to
    if (low is None) != (high is None):
        return _error(_("A range of houses needs both ends."), "area_range_incomplete")
    if low is not None:
        if not street:
            return _error(_("A range of houses needs its street."), "area_range_street")
        if not (1 <= low <= high <= MAX_HOUSE):
            return _error(
                _("A range of houses runs from a smaller number to a larger one, 1 to %(max)s.") % {"max": MAX_HOUSE},
                "area_range_invalid",
            )
    return AreaData(city, street, low, high)


def clean_incident(data: IncidentData) -> IncidentData:
    errors: dict[str, ValidationError] = {}
    title = " ".join((data.title or "").split())
    description = (data.description or "").strip()
    if not title:
        errors["title"] = _error(_("Give the incident a title."), "required")
    elif len(title) > 200:
        errors["title"] = _error(_("At most 200 characters."), "too_long")
    if not description:
        errors["description"] = _error(_("Say what subscribers should know."), "required")
    elif len(description) > 2000:
        errors["description"] = _error(_("At most 2000 characters."), "too_long")
    if data.kind not in IncidentKind.values:
        errors["kind"] = _error(_("Unknown kind."), "kind_invalid")
    if data.starts_at is None:
        errors["starts_at"] = _error(_("Say when it started."), "required")
    elif abs(data.starts_at - clock.now()) > MAX_START_DISTANCE:
        errors["starts_at"] = _error(_("The start must be within a year from now."), "starts_at_out_of_range")
    nas_ids = sorted(set(data.nas_ids or []))
    if len(nas_ids) > MAX_NAS:
        errors["nas"] = _error(_("At most %(max)s NAS.") % {"max": MAX_NAS}, "too_many_nas")
    elif nas_ids and Nas.objects.filter(pk__in=nas_ids).count() != len(nas_ids):
        errors["nas"] = _error(_("Choose NAS from the list."), "nas_invalid")
    areas: list[AreaData] = []
    if len(data.areas or []) > MAX_AREAS:
        errors["areas"] = _error(_("At most %(max)s areas.") % {"max": MAX_AREAS}, "too_many_areas")
    else:
        for area in data.areas or []:
            cleaned = _clean_area(area)
            if isinstance(cleaned, ValidationError):
                errors.setdefault("areas", cleaned)
            elif cleaned not in areas:
                areas.append(cleaned)
    if not nas_ids and not areas and "areas" not in errors and "nas" not in errors:
        errors["areas"] = _error(_("Name the NAS or the addresses the incident touches."), "scope_required")
    if errors:
        raise ValidationError(errors)
    return IncidentData(title, description, data.kind, data.starts_at, nas_ids, areas)


def clean_ends_at(starts_at: dt.datetime, ends_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When a resolved incident ended: ``now`` by default, never before it started nor in the future."""
    ends_at = ends_at or now
    if ends_at < starts_at:
        raise ValidationError({"ends_at": _error(_("An incident cannot end before it started."), "ends_before_start")})
    if ends_at > now:
        raise ValidationError({"ends_at": _error(_("An incident cannot end in the future."), "ends_in_future")})
    return ends_at
