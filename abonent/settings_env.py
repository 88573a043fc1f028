"""Reading settings from the environment: shared by ``settings.py`` and the ``settings_*.py`` beside it."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def at_least_one(name: str, default: int) -> int:
    """A count or a number of seconds for which 0 cannot mean "off": refused at start, in every environment."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least 1, not {raw!r}")
    return value


def var_dir() -> Path:
    """``ABONENT_VAR_DIR``: where the demo's database, the RADIUS spool and private files live (``./var``)."""
    return Path(os.environ.get("ABONENT_VAR_DIR", Path.cwd() / "var")).resolve()
