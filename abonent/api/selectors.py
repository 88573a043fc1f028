"""Reads of the API app."""

from __future__ import annotations

from abonent.staff.models import ApiToken


def radius_binding(token: ApiToken) -> tuple[bool, frozenset[int]]:
    """Whether ``token`` is a RADIUS front-end's (marked ``RadiusToken``, or bound to a NAS), and the NAS it
    speaks for now, in one query. ``(False, frozenset())`` for every other token."""
    rows = list(ApiToken.objects.filter(pk=token.pk).values_list("radius_only", "nas_bindings__nas_id"))
    nas_ids = frozenset(nas_id for _mark, nas_id in rows if nas_id is not None)
    return any(mark is not None for mark, _nas_id in rows) or bool(nas_ids), nas_ids
