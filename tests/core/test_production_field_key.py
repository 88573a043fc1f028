"""Production refuses a weak ABONENT_FIELD_KEY, by the same rule as the secret key.

It used to start with any value: ABONENT_FIELD_KEY is the key of the encryption of NAS shared secrets and PPPoE
passwords (abonent/core/secrets.py), so with ABONENT_FIELD_KEY=x a database dump gave up every PPPoE password
to a one-line guess.
"""

import pytest

# Like what `python3 -c 'import secrets; print(secrets.token_urlsafe(50))'` prints (the command the docs give).
GOOD_KEY = "q7Zc1Xo3mD9vKf2LwTa8Rj5NbYh0GpUe4SiCxVr6EkHn_Ml-Ot7QzWy1Pd3Fs8Bg2Aj9"
GOOD_FIELD_KEY = "Vb8-Lr2Qx5Tn9Kd1Hs7Mf3Wc6Zp0Ja4Ge2Ny8Ui5Ot1Rk7Ec3Ym9Dh6Sl0Fw4Pq"
PRODUCTION = {
    "ABONENT_ENV": "production",
    "ABONENT_SECRET_KEY": GOOD_KEY,
    "ABONENT_ALLOWED_HOSTS": "billing.example.ru",
}


@pytest.mark.parametrize(
    "field_key",
    [
        "x",
        "change-me",
        "abcd" * 20,  # long enough, four different characters
        GOOD_FIELD_KEY[:49],  # one short of the minimum
        "django-insecure-" + GOOD_FIELD_KEY,
    ],
)
def test_production_refuses_a_weak_field_key(field_key, import_settings):
    result = import_settings({**PRODUCTION, "ABONENT_FIELD_KEY": field_key})

    assert result.returncode != 0, "production started with ABONENT_FIELD_KEY=" + field_key
    assert "ABONENT_FIELD_KEY must be unset or a random string of at least 50 characters" in result.stderr
    assert "ABONENT_SECRET_KEY must be set" not in result.stderr


@pytest.mark.parametrize("field_key", [GOOD_FIELD_KEY, None])
def test_production_starts_with_a_strong_field_key_or_none(field_key, import_settings):
    # Unset, the secret key (itself checked) is the key.
    env = {**PRODUCTION, "ABONENT_FIELD_KEY": field_key} if field_key else PRODUCTION

    result = import_settings(env)

    assert result.returncode == 0, result.stderr


def test_development_accepts_any_field_key(import_settings):
    result = import_settings({"ABONENT_FIELD_KEY": "x"})

    assert result.returncode == 0, result.stderr
