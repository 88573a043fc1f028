import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from abonent.subscribers.validators import (
    luhn_check_digit,
    make_account_number,
    normalize_mac,
    normalize_phone,
    validate_account_number,
    validate_inn,
    validate_kpp,
    validate_passport,
)


def test_account_numbers_have_nine_digits_and_a_valid_check_digit():
    number = make_account_number(10000000)
    assert number == "100000009"
    assert validate_account_number(number) == number


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("100000008", "account_number_check_digit"),
        ("10000000", "account_number_length"),
        ("1000000091", "account_number_length"),
        ("10000000x", "account_number_format"),
        ("１００００００００９", "account_number_format"),  # full-width digits are not ASCII
        ("", "account_number_format"),
    ],
)
def test_bad_account_numbers_are_refused_with_a_reason(value, code):
    with pytest.raises(ValidationError) as exc:
        validate_account_number(value)
    assert exc.value.code == code


@given(st.integers(min_value=10_000_000, max_value=99_999_999), st.integers(0, 7), st.integers(1, 9))
def test_any_single_digit_typo_is_caught(serial, position, delta):
    number = make_account_number(serial)
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    with pytest.raises(ValidationError):
        validate_account_number(typo)


@given(st.integers(min_value=10_000_000, max_value=99_999_999), st.integers(0, 7))
def test_adjacent_transpositions_are_caught_except_09(serial, position):
    number = make_account_number(serial)
    a, b = number[position], number[position + 1]
    if a == b or {a, b} == {"0", "9"}:  # the one blind spot of Luhn
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    with pytest.raises(ValidationError):
        validate_account_number(swapped)


def test_luhn_of_a_known_card_number():
    assert luhn_check_digit("7992739871") == 3


@pytest.mark.parametrize(
    "raw", ["8 (916) 123-45-67", "+7 916 123 45 67", "9161234567", "+79161234567", "8-916-123-45-67"]
)
def test_phones_are_normalised_to_e164(raw):
    assert normalize_phone(raw) == "+79161234567"


@pytest.mark.parametrize("raw", ["12345", "+7 916 123", "телефон", "", "+7 (000) 000-00-00"])
def test_invalid_phones_are_refused(raw):
    with pytest.raises(ValidationError):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", ["AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "aabbccddeeff", "aa:bb:cc:dd:ee:ff"])
def test_macs_are_normalised(raw):
    assert normalize_mac(raw) == "aa:bb:cc:dd:ee:ff"


def test_bad_mac_is_refused():
    with pytest.raises(ValidationError):
        normalize_mac("aa:bb:cc:dd:ee")


@pytest.mark.parametrize("inn", ["7707083893", "500100732259"])  # Sberbank; a valid personal INN
def test_valid_inn(inn):
    assert validate_inn(inn) == inn


@pytest.mark.parametrize("inn", ["7707083894", "500100732250", "12345", "77070838931"])
def test_invalid_inn(inn):
    with pytest.raises(ValidationError):
        validate_inn(inn)


def test_kpp_and_passport():
    assert validate_kpp("773601001") == "773601001"
    with pytest.raises(ValidationError):
        validate_kpp("7736")
    assert validate_passport("28 04", "123 456") == ("2804", "123456")
    with pytest.raises(ValidationError) as exc:
        validate_passport("28", "12")
    assert set(exc.value.error_dict) == {"passport_series", "passport_number"}


def _phonenumbers_verdict(text: str, region: str) -> str | None:
    """What ``phonenumbers`` alone makes of ``text``: the E.164 form, or None when it is not a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@given(
    prefix=st.sampled_from(["8", "+7", "8 ", "+7 ", "8(", "+7 (", "8-"]),
    digits=st.text(alphabet="0123456789", min_size=9, max_size=11),
    spaced=st.booleans(),
    region=st.sampled_from(["RU", "KZ", "BY"]),
)
def test_the_fast_path_for_russian_shapes_agrees_with_phonenumbers(prefix, digits, spaced, region):
    # normalize_phone skips phonenumbers.parse for "+7/8 and ten digits" (an import checks 100,000 of them): it must
    # accept and refuse exactly what the full parse does, "8 10…" (the international prefix) and 0-led numbers too.
    text = prefix + (f"{digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}" if spaced else digits)
    try:
        ours = normalize_phone(text, region)
    except ValidationError:
        ours = None
    assert ours == _phonenumbers_verdict(text, region)


def test_the_fast_path_keeps_the_verdict_on_unallocated_ranges():
    assert normalize_phone("8 (930) 123-45-67") == "+79301234567"
    with pytest.raises(ValidationError):
        normalize_phone("8 (930) 000-00-00")  # +7 930 000… is not allocated: phonenumbers refuses it
