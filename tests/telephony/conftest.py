from __future__ import annotations

import pytest
from django.test import Client

from abonent.integrations.telephony.actions import do_set_extension
from abonent.integrations.telephony.testing import FakeAsterisk


@pytest.fixture
def ami_server():
    server = FakeAsterisk().start()
    yield server
    server.stop()


@pytest.fixture
def cookies_of():
    def cookies(user) -> dict[str, str]:
        client = Client()
        client.force_login(user)
        return {"sessionid": client.cookies["sessionid"].value}

    return cookies


@pytest.fixture
def give_extension(admin):
    def give(user, number: str):
        return do_set_extension(user, number, acting_user=admin)

    return give


@pytest.fixture
def recordings(settings, tmp_path):
    root = tmp_path / "recordings"
    root.mkdir()
    settings.ABONENT_RECORDINGS_DIR = str(root)
    return root
