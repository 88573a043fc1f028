"""A clumsy operator against ``abonent rotate-field-key`` (issue 12). Failed on main at 24bb880."""

import pytest
from django.core.management import CommandError

from . import test_rotate_field_key as rotation
from .test_rotate_field_key import OLD_KEY, _run

pytestmark = pytest.mark.django_db

under_old_key = rotation.under_old_key  # the fixture: a NAS and three logins under OLD_KEY


@pytest.mark.parametrize("forgot", ["the new key in ABONENT_FIELD_KEY", "ABONENT_FIELD_KEY at all"])
def test_the_old_key_as_the_new_one_is_refused_not_reported_as_a_finished_rotation(under_old_key, settings, forgot):
    # given the operator put the key to retire in ABONENT_FIELD_KEY_OLD but left it in ABONENT_FIELD_KEY too
    # (or, ABONENT_FIELD_KEY having been unset, named SECRET_KEY's value as the old key and set no new one)
    if forgot == "ABONENT_FIELD_KEY at all":
        settings.SECRET_KEY = OLD_KEY
        settings.ABONENT_FIELD_KEY = ""
    settings.ABONENT_FIELD_KEY_OLD = [OLD_KEY]
    # when they run the rotation, then it refuses: nothing would be rotated. On 24bb880 it reports
    # "0 re-encrypted, N already under the new key, 0 unreadable" for every column, which the procedure
    # (docs/operations.md, step 5) tells them means the rotation is complete, and the leaked key stays in use.
    with pytest.raises(CommandError, match="ABONENT_FIELD_KEY"):
        print(_run())
