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


@dataclass(frozen=True)
class Lines:
    """How many lines a panel with a growing list shows (the ledger, the history, the notes): ``shown`` now, and
    ``more`` for its "show more" link (None: already the most). The card shows the newest few, so its cost does
    not grow with the subscriber's history (issue 17); the link asks for the panel again with more."""

    shown: int
    more: int | None

    @classmethod
    def asked(cls, value, *, default: int, most: int = 500) -> Lines:
        try:
            shown = max(1, min(int(value), most))
        except (TypeError, ValueError):
            shown = default
        more = min(max(shown * 5, 100), most)
        return cls(shown, more if more > shown else None)


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
