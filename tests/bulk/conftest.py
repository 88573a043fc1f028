import pytest
from django.test import Client


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.ABONENT_QUIET_HOURS = ""


@pytest.fixture
def client_of():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
