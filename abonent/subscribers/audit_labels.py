"""The card's history registry (``history.ACTION_LABELS``, ``EXTRA_LABELS``: this app's actions and those other
apps add from their ``panels.py``) read by the audit viewer as well, and the values only the registry knows."""

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import add_label_source, register_action_labels

from . import history
from .models import EquipmentOwnership

add_label_source(actions=history.ACTION_LABELS, fields=history.EXTRA_LABELS)
register_action_labels(
    {"equipment.registered": _("Device registered")}, values={"ownership": EquipmentOwnership.choices}
)
