"""NAS vendor profiles: how speed, the debtor redirect, pools and CoA/Disconnect look for each kind of NAS.

Each profile is a sibling module with one class implementing ``VendorProfile``; ``profile_for(vendor)``
returns it. Attributes are ``(name, value)`` pairs in the names of our dictionary (radius/dictionary).
"""

from __future__ import annotations

from .accel_ppp import AccelPppProfile
from .base import IDENTITY_ATTRIBUTES, Attributes, SessionRef, Speed, VendorProfile, changed_keys
from .cisco import CiscoProfile
from .mikrotik import MikrotikProfile

PROFILES: dict[str, VendorProfile] = {
    "mikrotik": MikrotikProfile(),
    "accel_ppp": AccelPppProfile(),
    "cisco": CiscoProfile(),
}


def profile_for(vendor: str) -> VendorProfile:
    return PROFILES[vendor]


__all__ = [
    "IDENTITY_ATTRIBUTES",
    "PROFILES",
    "Attributes",
    "SessionRef",
    "Speed",
    "VendorProfile",
    "changed_keys",
    "profile_for",
]
