"""Writes of the API app: binding a RADIUS service token to the NAS it speaks for.

FreeRADIUS's rlm_rest endpoints (``network/api.py``) answer with any subscriber's PPPoE password and write
sessions, so a token may call them only for the NAS it is bound to (``ApiTokenNas``), and only a service
account's token without a branch limit may be bound at all: never a person's (issue 11). Each action is atomic,
checks the acting user (``None`` for the command line), validates before it writes, and leaves an audit row.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.network.models import Nas
from abonent.staff.actions import do_create_api_token
from abonent.staff.models import ApiToken, StaffUser
from abonent.staff.permissions import Perm, allowed_branch_ids, check_perm, has_perm

from .models import ApiTokenNas, RadiusToken


def check_radius_account(user: StaffUser) -> None:
    """Refuse an account that may not speak for a NAS: a person, a deactivated or a branch-limited account."""
    if not user.is_active or not has_perm(user, Perm.RADIUS_SERVICE):
        raise ValidationError(
            _("Only an active service account may speak for a NAS; %(user)s is not one.") % {"user": user.username},
            code="not_a_service_account",
        )
    if allowed_branch_ids(user) is not None:
        raise ValidationError(
            _("A RADIUS service account sees every subscriber of its NAS: remove the branch limit of %(user)s.")
            % {"user": user.username},
            code="branch_limited",
        )


@transaction.atomic
def do_bind_api_token_to_nas(token: ApiToken, *, nas: Nas, acting_user=None) -> ApiTokenNas:
    """Let ``token`` speak for ``nas`` on the FreeRADIUS endpoints, and mark it a RADIUS token for good
    (``RadiusToken``): it opens no other endpoint from now on. Binding twice keeps the first row."""
    if acting_user is not None:
        check_perm(acting_user, Perm.STAFF_MANAGE)
    token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if token.revoked_at is not None:
        raise ValidationError(_("This token is revoked."), code="token_revoked")
    check_radius_account(token.user)
    # The mark outlives the binding: unbound from its last NAS, the token opens nothing (auth.TokenAuth).
    RadiusToken.objects.get_or_create(token=token, defaults={"created_at": clock.now()})
    binding, created = ApiTokenNas.objects.get_or_create(token=token, nas=nas, defaults={"created_at": clock.now()})
    if created:
        audit.record(
            actor=acting_user,
            action="api.token_nas_bound",
            obj=token,
            after={"nas": nas.pk, "nas_name": nas.name, "ip_address": nas.ip_address},
        )
    return binding


@transaction.atomic
def do_unbind_api_token_from_nas(binding: ApiTokenNas, *, acting_user=None) -> None:
    """The token no longer speaks for this NAS (FreeRADIUS's requests from it are refused from now on). It stays
    a RADIUS token: without a NAS it opens nothing, never the API with its account's role."""
    if acting_user is not None:
        check_perm(acting_user, Perm.STAFF_MANAGE)
    binding = ApiTokenNas.objects.select_related("token", "nas").get(pk=binding.pk)
    audit.record(
        actor=acting_user,
        action="api.token_nas_unbound",
        obj=binding.token,
        before={"nas": binding.nas_id, "nas_name": binding.nas.name, "ip_address": binding.nas.ip_address},
    )
    binding.delete()


@transaction.atomic
def do_create_radius_token(
    *, user: StaffUser, name: str, nas: list[Nas], expires_at: dt.datetime | None = None, acting_user=None
) -> tuple[ApiToken, str]:
    """A new token of ``user`` bound to ``nas``, with its plaintext (shown once): all of it or nothing."""
    if acting_user is not None:
        check_perm(acting_user, Perm.STAFF_MANAGE)
    if not nas:
        raise ValidationError(_("Name at least one NAS the token speaks for."), code="nas_required")
    check_radius_account(user)
    token, plaintext = do_create_api_token(user=user, name=name, expires_at=expires_at, acting_user=acting_user)
    for item in nas:
        do_bind_api_token_to_nas(token, nas=item, acting_user=acting_user)
    return token, plaintext
