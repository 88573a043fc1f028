"""Names of this app's audit actions for the audit viewer (``core.audit_labels`` finds this module); the card's
history reads the same from ``panels.py``."""

from . import panels  # noqa: F401
