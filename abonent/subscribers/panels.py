"""Panels of the subscriber card. Each app adds its own (balance, sessions, tickets…) with ``register_panel``.

A panel is a template plus a function building its context; the card renders those the user may see,
in ``order``. The card view knows no app but this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils.safestring import SafeString


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    template: str
    order: int
    context: Callable[..., dict]
    permission: str | None = None


_panels: dict[str, Panel] = {}


def register_panel(panel: Panel) -> Panel:
    _panels[panel.name] = panel
    return panel


def panels_for(user) -> list[Panel]:
    return sorted(
        (p for p in _panels.values() if p.permission is None or user.has_perm(p.permission)),
        key=lambda p: p.order,
    )


def render_panel(request, subscriber, panel: Panel, **overrides) -> SafeString:
    context = {**panel.context(request=request, subscriber=subscriber), **overrides}
    return render_to_string(panel.template, {"subscriber": subscriber, "panel": panel, **context}, request=request)
