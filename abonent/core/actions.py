"""Writes to core's own reference data: the company's details and branches.

Like every action: atomic, access checked first, the whole row validated before anything is written, an audit row
in the same transaction. Core imports no domain app, so access is asked through Django's ``user.has_perm``, which
the staff app's role backend answers: ``setup.manage``, the administrator's.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from . import audit, requisites
from .models import Branch, CompanyProfile

SETUP_PERMISSION = "setup.manage"
PROFILE_FIELDS = frozenset(f.name for f in CompanyProfile._meta.concrete_fields if f.name not in ("id", "updated_at"))


def _check(user) -> None:
    if not (getattr(user, "is_authenticated", False) and user.has_perm(SETUP_PERMISSION)):
        raise PermissionDenied(_("You do not have permission to do this."))


@transaction.atomic
def do_save_company_profile(*, acting_user, **fields) -> CompanyProfile:
    """Create or change the company's details (any of ``PROFILE_FIELDS``; the rest kept). Refuses, writing
    nothing, when a value or the requisites together do not check out (``CompanyProfile.clean``)."""
    _check(acting_user)
    unknown = set(fields) - PROFILE_FIELDS
    if unknown:
        raise TypeError(f"not company profile fields: {sorted(unknown)}")
    profile = CompanyProfile.objects.select_for_update().filter(pk=CompanyProfile.SINGLETON_ID).first()
    created = profile is None
    profile = profile or CompanyProfile(pk=CompanyProfile.SINGLETON_ID)
    before = {} if created else audit.snapshot(profile)
    for name, value in fields.items():
        setattr(profile, name, value.strip() if isinstance(value, str) else value)
    profile.full_clean()
    profile.save()
    old, new = audit.diff(before, audit.snapshot(profile))
    old.pop("updated_at", None)
    new.pop("updated_at", None)
    if new or created:
        audit.record(
            actor=acting_user,
            action="core.company_created" if created else "core.company_changed",
            obj=profile,
            before=old,
            after=new,
        )
    return profile


@transaction.atomic
def do_create_branch(*, acting_user, code: str, name: str, time_zone: str = "") -> Branch:
    _check(acting_user)
    # Codes are kept in lower case, so "TVER" is the same branch as "tver" for the unique check and for imports.
    branch = Branch(code=code.strip().lower(), name=name.strip(), time_zone=time_zone.strip())
    branch.full_clean()
    if branch.time_zone:
        try:
            requisites.validate_time_zone(branch.time_zone)
        except ValidationError as exc:
            raise ValidationError({"time_zone": exc}) from None
    branch.save()
    audit.record(actor=acting_user, action="core.branch_created", obj=branch, after=audit.snapshot(branch))
    return branch
