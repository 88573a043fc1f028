"""The check digits of a company's requisites: real numbers pass, a one-digit typo fails."""

import pytest
from django.core.exceptions import ValidationError

from abonent.core import requisites

# Sberbank's published requisites: INN, OGRN, Moscow BIK and its correspondent account.
SBER_INN, SBER_OGRN, SBER_BIK, SBER_CORR = "7707083893", "1027700132195", "044525225", "30101810400000000225"


@pytest.mark.parametrize("inn", [SBER_INN, "500100732259"])
def test_real_inns_pass(inn):
    assert requisites.inn_is_valid(inn)
    requisites.validate_inn(inn)


@pytest.mark.parametrize(
    ("inn", "code"),
    [
        ("7707083894", "inn_check"),
        ("500100732258", "inn_check"),
        ("770708389", "inn_length"),
        ("77070838931", "inn_length"),
        ("77070a3893", "inn_length"),
    ],
)
def test_a_wrong_inn_is_refused_with_its_reason(inn, code):
    with pytest.raises(ValidationError) as refused:
        requisites.validate_inn(inn)
    assert refused.value.code == code


def test_ogrn_and_ogrnip():
    assert requisites.ogrn_is_valid(SBER_OGRN)
    assert requisites.ogrn_is_valid("304500116000157")
    assert not requisites.ogrn_is_valid("1027700132196")
    with pytest.raises(ValidationError):
        requisites.validate_ogrn("102770013219")


def test_account_keys_against_the_bik():
    assert requisites.account_key_is_valid(SBER_BIK, SBER_CORR, correspondent=True)
    assert requisites.account_key_is_valid(SBER_BIK, "40702810938000000001")
    # One digit off (the 9th, the control key's place) and the key no longer sums.
    assert not requisites.account_key_is_valid(SBER_BIK, "40702810838000000001")
    # The correspondent account read as a settlement one uses the wrong three digits of the BIK.
    assert not requisites.account_key_is_valid(SBER_BIK, SBER_CORR)


@pytest.mark.parametrize("kpp", ["770701001", "7707AB001"])
def test_kpp_shapes(kpp):
    requisites.validate_kpp(kpp)


@pytest.mark.parametrize("kpp", ["77070100", "7707ab001", "770701001X"])
def test_bad_kpp(kpp):
    with pytest.raises(ValidationError):
        requisites.validate_kpp(kpp)


def test_time_zone_and_currency():
    requisites.validate_time_zone("Asia/Yekaterinburg")
    requisites.validate_currency("RUB")
    with pytest.raises(ValidationError):
        requisites.validate_time_zone("Moscow")
    with pytest.raises(ValidationError):
        requisites.validate_currency("rub")
