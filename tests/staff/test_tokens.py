import datetime as dt

from django.core.management import call_command

from abonent.core import clock
from abonent.staff.actions import do_create_api_token, do_revoke_api_token
from abonent.staff.models import ApiToken, StaffUser
from abonent.staff.selectors import get_user_by_api_token


def test_token_is_stored_only_as_a_hash(admin):
    token, plaintext = do_create_api_token(user=admin, name="crm")
    assert plaintext.startswith(f"abn_{token.prefix}_")
    assert plaintext not in {token.token_hash, token.prefix, token.name}
    assert get_user_by_api_token(plaintext) == (admin, token)


def test_revoked_expired_and_unknown_tokens_do_not_authenticate(admin):
    revoked, revoked_plain = do_create_api_token(user=admin, name="old")
    do_revoke_api_token(token=revoked, acting_user=admin, reason="leaked")
    _expiring, expiring_plain = do_create_api_token(
        user=admin, name="temp", expires_at=clock.now() + dt.timedelta(days=1)
    )
    assert get_user_by_api_token(revoked_plain) == (None, None)
    assert get_user_by_api_token("abn_nope_nope") == (None, None)
    assert get_user_by_api_token("") == (None, None)
    with clock.travel_to(clock.now() + dt.timedelta(days=2)):
        assert get_user_by_api_token(expiring_plain) == (None, None)


def test_create_api_token_command_makes_a_service_account(db, capsys):
    call_command("create_api_token", user="crm", name="CRM", create_service_account="support")
    plaintext = capsys.readouterr().out.strip()
    user = StaffUser.objects.get(username="crm")
    assert user.is_service_account and user.role == "support" and not user.has_usable_password()
    assert get_user_by_api_token(plaintext)[0] == user
    assert ApiToken.objects.filter(user=user).count() == 1
