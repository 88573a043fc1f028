"""Reads of the API app."""

from __future__ import annotations

from abonent.staff.models import ApiToken

from .models import ApiTokenNas


def bound_nas_ids(token: ApiToken) -> frozenset[int]:
    """The NAS a RADIUS service token speaks for; empty for every other token."""
    return frozenset(ApiTokenNas.objects.filter(token=token).values_list("nas_id", flat=True))
