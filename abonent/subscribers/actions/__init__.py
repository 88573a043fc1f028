"""Writes of the subscribers app. Each is atomic, checks the actor's access, validates everything
before writing anything, writes an audit row, and emits its event after commit. One module per concern:
common (data, validation, search text), subscriber, contacts, equipment, history."""

from .common import (
    ACCOUNT_SEQUENCE,
    AUDITED_FIELDS,
    ORGANIZATION_FIELDS,
    PERSON_FIELDS,
    PROFILE_FIELDS,
    AddressData,
    ContactData,
    SubscriberData,
    clean_address,
    clean_contact,
    clean_profile,
    display_name_of,
    refresh_search_text,
)
from .contacts import (
    ADDRESS_FIELDS,
    do_add_address,
    do_add_contact,
    do_remove_address,
    do_remove_contact,
    do_update_address,
)
from .equipment import (
    do_assign_equipment,
    do_install_equipment,
    do_register_equipment,
    do_return_equipment,
)
from .groups import do_set_group_membership
from .history import (
    do_add_connection_event,
    do_add_note,
)
from .legacy import LegacyAccountResult, do_set_legacy_account, do_set_legacy_accounts
from .subscriber import (
    allocate_account_number,
    do_close_subscriber,
    do_create_subscriber,
    do_reopen_subscriber,
    do_update_subscriber,
)

__all__ = [
    "ACCOUNT_SEQUENCE",
    "ADDRESS_FIELDS",
    "AUDITED_FIELDS",
    "ORGANIZATION_FIELDS",
    "PERSON_FIELDS",
    "PROFILE_FIELDS",
    "AddressData",
    "ContactData",
    "LegacyAccountResult",
    "SubscriberData",
    "allocate_account_number",
    "clean_address",
    "clean_contact",
    "clean_profile",
    "display_name_of",
    "do_add_address",
    "do_add_connection_event",
    "do_add_contact",
    "do_add_note",
    "do_assign_equipment",
    "do_close_subscriber",
    "do_create_subscriber",
    "do_install_equipment",
    "do_register_equipment",
    "do_remove_address",
    "do_remove_contact",
    "do_reopen_subscriber",
    "do_return_equipment",
    "do_set_group_membership",
    "do_set_legacy_account",
    "do_set_legacy_accounts",
    "do_update_address",
    "do_update_subscriber",
    "refresh_search_text",
]
