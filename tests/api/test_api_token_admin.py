"""API tokens in the admin site: every change is audited, un-revoking above all."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.staff.actions import do_create_api_token, do_revoke_api_token
from abonent.staff.models import ApiToken


def _split(moment: dt.datetime | None) -> tuple[str, str]:
    # The admin's date and time boxes are in the installation's time zone.
    if moment is None:
        return "", ""
    local = timezone.localtime(moment)
    return local.date().isoformat(), local.time().isoformat()


def _change_form(token: ApiToken, **fields) -> dict:
    (expires_date, expires_time), (revoked_date, revoked_time) = _split(token.expires_at), _split(token.revoked_at)
    return {
        "expires_at_0": expires_date,
        "expires_at_1": expires_time,
        "revoked_at_0": revoked_date,
        "revoked_at_1": revoked_time,
        **fields,
    }


def test_un_revoking_a_token_in_the_admin_is_audited(admin, client, make_staff):
    token, _plaintext = do_create_api_token(user=make_staff("operator"), name="1C")
    token = do_revoke_api_token(token=token, acting_user=admin, reason="leaked")
    revoked_at = token.revoked_at
    client.force_login(admin)

    response = client.post(
        f"/staff/admin/staff/apitoken/{token.pk}/change/", _change_form(token, revoked_at_0="", revoked_at_1="")
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is None
    event = AuditEvent.objects.get(action="admin.apitoken_changed")
    assert (event.actor, event.object_id) == (admin, str(token.pk))
    assert event.before == {"revoked_at": revoked_at.isoformat()}
    assert event.after == {"revoked_at": None}


def test_lengthening_a_token_in_the_admin_is_audited(admin, client, make_staff):
    expires = clock.now().replace(microsecond=0) + dt.timedelta(days=1)
    token, _plaintext = do_create_api_token(user=make_staff("operator"), name="1C", expires_at=expires)
    client.force_login(admin)

    later_date, _later_time = _split(expires + dt.timedelta(days=365))
    response = client.post(
        f"/staff/admin/staff/apitoken/{token.pk}/change/", _change_form(token, expires_at_0=later_date)
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.apitoken_changed")
    assert event.before == {"expires_at": expires.isoformat()}
    assert event.after == {"expires_at": (expires + dt.timedelta(days=365)).isoformat()}


def test_saving_a_token_unchanged_records_no_difference(admin, client, make_staff):
    expires = clock.now().replace(microsecond=0) + dt.timedelta(days=1)
    token, _plaintext = do_create_api_token(user=make_staff("operator"), name="1C", expires_at=expires)
    client.force_login(admin)

    client.post(f"/staff/admin/staff/apitoken/{token.pk}/change/", _change_form(token))

    event = AuditEvent.objects.get(action="admin.apitoken_changed")
    assert (event.before, event.after) == ({}, {})
