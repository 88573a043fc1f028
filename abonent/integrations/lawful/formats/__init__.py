"""Lawful-export formats: each module registers one ``Exporter`` (``base.py``); importing this package loads them."""

from . import vas_experts  # noqa: F401
from .base import NOT_BUILT, ExportTooSlow, Package, format_choices, get_exporter, register_exporter

__all__ = ["NOT_BUILT", "ExportTooSlow", "Package", "format_choices", "get_exporter", "register_exporter"]
