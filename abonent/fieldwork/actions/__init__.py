"""Writes of field work. Each is atomic, checks its actor (and the branch), validates before writing, writes an
audit row; device moves also write a ``StockMove``. One module per concern: stock, jobs, closing."""

from .closing import do_close_job
from .jobs import ProspectData, Slot, do_cancel_job, do_create_job, do_reschedule_job, do_set_checklist_template
from .stock import (
    TRANSITIONS,
    do_create_device_model,
    do_issue_device,
    do_receive_devices,
    do_return_device,
    do_write_off_device,
    install_device,
    parse_serials,
)

__all__ = [
    "TRANSITIONS",
    "ProspectData",
    "Slot",
    "do_cancel_job",
    "do_close_job",
    "do_create_device_model",
    "do_create_job",
    "do_issue_device",
    "do_receive_devices",
    "do_reschedule_job",
    "do_return_device",
    "do_set_checklist_template",
    "do_write_off_device",
    "install_device",
    "parse_serials",
]
