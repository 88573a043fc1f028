"""Prepaid cards: codes, series, a dealer's sale, activation once, refusals, void and expiry, with the ledger."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from abonent.billing import ledger
from abonent.billing.models import LedgerTransaction, TransactionKind
from abonent.core import clock
from abonent.vouchers import actions, codes, throttle
from abonent.vouchers.models import MAX_SERIES_COUNT, Voucher, VoucherStatus
from abonent.vouchers.testing import balance, balance_of, card, code_of


def _errors(exc: ValidationError) -> set[str]:
    return {e.code for errors in exc.error_dict.values() for e in errors}


# --- codes -------------------------------------------------------------------------------------------------------


def test_a_code_has_75_random_bits_in_a_readable_alphabet_and_a_check_character():
    code = codes.generate()
    assert len(code) == 16
    assert set(code) <= set(codes.ALPHABET)
    assert not set(code) & set("01OI")
    assert len(codes.ALPHABET) ** codes.RANDOM_LENGTH >= 2**75
    assert codes.normalise(codes.printed(code).lower()) == code
    assert codes.printed(code).count("-") == 3


@given(st.text(alphabet=codes.ALPHABET, min_size=15, max_size=15), st.integers(0, 14), st.sampled_from(codes.ALPHABET))
def test_any_one_wrong_character_is_a_typo_not_a_guess(body, position, replacement):
    code = body + codes.check_character(body)
    wrong = code[:position] + replacement + code[position + 1 :]
    if wrong != code:
        assert codes.normalise(wrong) is None


@given(st.text(alphabet=codes.ALPHABET, min_size=15, max_size=15), st.integers(0, 14))
def test_two_neighbours_swapped_are_a_typo(body, position):
    code = body + codes.check_character(body)
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    if swapped != code:
        assert codes.normalise(swapped) is None


def test_a_series_has_unique_codes_stored_as_hmac_and_ciphertext(series):
    cards = list(Voucher.objects.filter(series=series).order_by("serial"))
    assert [c.serial for c in cards] == [actions.serial_of(series, n) for n in range(1, 11)]
    plain = [code_of(c) for c in cards]
    assert len(set(plain)) == 10
    assert len({c.code_digest for c in cards}) == 10
    for c, p in zip(cards, plain, strict=True):
        assert p.replace("-", "") not in c.code_digest + c.code_encrypted
        assert c.code_digest == codes.digest(p.replace("-", ""))


def test_a_series_count_is_bounded(admin):
    for count in (0, MAX_SERIES_COUNT + 1):
        with pytest.raises(ValidationError) as exc:
            actions.do_create_series(
                name="x", kind="topup", amount="100", count=count, expires_on=dt.date(2027, 1, 1), acting_user=admin
            )
        assert "count_out_of_range" in _errors(exc.value)
    with pytest.raises(ValidationError) as exc:
        actions.do_create_series(
            name="x", kind="topup", amount="-5", count=1, expires_on=dt.date(2027, 1, 1), acting_user=admin
        )
    assert "amount_not_positive" in _errors(exc.value)
    assert not Voucher.objects.exists()


def test_only_voucher_managers_create_series(operator):
    with pytest.raises(PermissionDenied):
        actions.do_create_series(
            name="x", kind="topup", amount="100", count=1, expires_on=dt.date(2027, 1, 1), acting_user=operator
        )


# --- sale ---------------------------------------------------------------------------------------------------------


def test_a_sale_books_the_dealers_money_as_a_liability_less_commission(series, dealer):
    assert balance_of("vouchers") == Decimal("2500.00")
    assert balance_of(f"cash:dealer:{dealer.pk}") == Decimal("-2375.00")
    assert balance_of("revenue:voucher_commission") == Decimal("-125.00")
    statuses = list(Voucher.objects.filter(series=series).order_by("serial").values_list("status", flat=True))
    assert statuses == ["sold"] * 5 + ["new"] * 5
    assert ledger.verify() == []


def test_a_resubmitted_sale_is_the_same_sale_and_an_overlapping_one_is_refused(series, dealer, admin):
    key = str(uuid.uuid4())
    first = actions.do_sell_vouchers(series, dealer=dealer, first=6, last=7, key=key, acting_user=admin)
    again = actions.do_sell_vouchers(series, dealer=dealer, first=6, last=7, key=key, acting_user=admin)
    assert again.pk == first.pk
    with pytest.raises(ValidationError) as exc:
        actions.do_sell_vouchers(series, dealer=dealer, first=7, last=8, key=str(uuid.uuid4()), acting_user=admin)
    assert "range_not_new" in _errors(exc.value)
    assert balance_of("vouchers") == Decimal("3500.00")
    assert card(series, 8).status == VoucherStatus.NEW


# --- activation ---------------------------------------------------------------------------------------------------


def test_a_sold_card_credits_its_face_value_once(series, make_subscriber):
    subscriber = make_subscriber()
    code = code_of(card(series, 1))
    result = actions.activate(subscriber, code=code, acting_user=None, client_ip="203.0.113.5")
    assert result.created and result.amount == Decimal("500.00")
    again = actions.activate(subscriber, code=code.lower().replace("-", " "), acting_user=None, client_ip="203.0.113.5")
    assert not again.created
    assert balance(subscriber) == Decimal("500.00")
    assert balance_of("vouchers") == Decimal("2000.00")
    tx = LedgerTransaction.objects.get(idempotency_key=f"voucher:{card(series, 1).pk}")
    assert tx.kind == TransactionKind.VOUCHER_ACTIVATION and tx.subscriber_id == subscriber.pk
    used = card(series, 1)
    assert (used.status, used.activated_by_id, used.transaction_id) == ("activated", subscriber.pk, tx.pk)
    assert ledger.verify() == []


def test_a_card_used_by_one_subscriber_is_refused_to_another(series, make_subscriber):
    first, second = make_subscriber(), make_subscriber(last_name="Петров", phone="+79161110000")
    code = code_of(card(series, 2))
    actions.activate(first, code=code, acting_user=None, client_ip=None)
    with pytest.raises(ValidationError) as exc:
        actions.activate(second, code=code, acting_user=None, client_ip=None)
    assert "card_used" in _errors(exc.value)
    assert balance(second) == Decimal("0.00")


@pytest.mark.parametrize(
    ("state", "error"), [("new", "card_not_sold"), ("void", "card_void"), ("expired", "card_expired")]
)
def test_unsold_void_and_expired_cards_are_refused(series, make_subscriber, admin, state, error):
    subscriber = make_subscriber()
    number = 6 if state == "new" else 3
    if state == "void":
        actions.do_void_vouchers(series, first=3, last=3, reason="украдена", acting_user=admin)
    if state == "expired":
        actions.do_expire_vouchers(dt.date(2028, 1, 1))
    with pytest.raises(ValidationError) as exc:
        actions.activate(subscriber, code=code_of(card(series, number)), acting_user=None, client_ip=None)
    assert error in _errors(exc.value)
    assert balance(subscriber) == Decimal("0.00")
    assert card(series, number).activated_by_id is None


def test_a_series_past_its_last_day_is_refused_before_the_expiry_job_ran(series, make_subscriber):
    subscriber = make_subscriber()
    with clock.travel_to(dt.date(2028, 1, 1)), pytest.raises(ValidationError) as exc:
        actions.activate(subscriber, code=code_of(card(series, 1)), acting_user=None, client_ip=None)
    assert "card_expired" in _errors(exc.value)


def test_a_typo_is_told_apart_and_not_counted_while_guesses_are_locked_out(series, make_subscriber, settings):
    settings.ABONENT_VOUCHER_MAX_FAILURES = 3
    subscriber = make_subscriber()
    good = code_of(card(series, 1))
    typo = good[:-1] + ("2" if good[-1] != "2" else "3")
    for _ in range(5):
        with pytest.raises(ValidationError) as exc:
            actions.activate(subscriber, code=typo, acting_user=None, client_ip="198.51.100.7")
        assert "code_mistyped" in _errors(exc.value)
    for _ in range(3):
        guess = codes.generate()
        with pytest.raises(ValidationError) as exc:
            actions.activate(subscriber, code=guess, acting_user=None, client_ip="198.51.100.7")
        assert "code_unknown" in _errors(exc.value)
    with pytest.raises(throttle.TooManyAttempts):
        actions.activate(subscriber, code=good, acting_user=None, client_ip="198.51.100.7")
    assert balance(subscriber) == Decimal("0.00")
    assert card(series, 1).status == VoucherStatus.SOLD


def test_one_address_cycling_through_subscribers_is_locked_out(series, make_subscriber, settings):
    settings.ABONENT_VOUCHER_MAX_FAILURES_PER_IP = 2
    people = [make_subscriber(phone=f"+7916111000{i}", last_name=f"Абонент{i}") for i in range(3)]
    for person in people[:2]:
        with pytest.raises(ValidationError):
            actions.activate(person, code=codes.generate(), acting_user=None, client_ip="2001:db8:7:9::5")
    with pytest.raises(throttle.TooManyAttempts):
        actions.activate(people[2], code=codes.generate(), acting_user=None, client_ip="2001:db8:7:9::77")


def test_the_operator_activates_a_card_for_the_subscriber(series, make_subscriber, operator):
    subscriber = make_subscriber()
    actions.activate(subscriber, code=code_of(card(series, 4)), acting_user=operator, client_ip=None)
    assert balance(subscriber) == Decimal("500.00")
    assert LedgerTransaction.objects.get(idempotency_key=f"voucher:{card(series, 4).pk}").acting_user_id == operator.pk


# --- void and expiry ---------------------------------------------------------------------------------------------


def test_void_and_expiry_move_only_sold_cards_liability(series, dealer, admin, make_subscriber):
    subscriber = make_subscriber()
    actions.activate(subscriber, code=code_of(card(series, 1)), acting_user=None, client_ip=None)
    voided = actions.do_void_vouchers(series, first=1, last=6, reason="пачка утеряна", acting_user=admin)
    assert voided == 5  # 2–5 sold, 6 new; 1 activated stays
    assert balance_of("vouchers") == Decimal("0.00")  # 2,500 sold − 500 used − 2,000 void
    # The dealer gets back what it paid for 2–5 (4 × 475); their commission (4 × 25) is taken back.
    assert balance_of(f"cash:dealer:{dealer.pk}") == Decimal("-2375.00") + Decimal("1900.00")
    assert balance_of("revenue:voucher_commission") == Decimal("-125.00") + Decimal("100.00")
    assert card(series, 1).status == VoucherStatus.ACTIVATED
    assert actions.do_expire_vouchers(dt.date(2028, 1, 1)) == 4  # 7–10, never sold
    assert balance_of("revenue:voucher_breakage") == Decimal("0.00")
    assert ledger.verify() == []


def test_a_sold_card_expired_unused_is_breakage_revenue_once(series):
    assert actions.do_expire_vouchers(dt.date(2028, 1, 1)) == 10
    assert actions.do_expire_vouchers(dt.date(2028, 1, 2)) == 0
    assert balance_of("revenue:voucher_breakage") == Decimal("2500.00")
    assert balance_of("vouchers") == Decimal("0.00")
    assert ledger.verify() == []


# --- races -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_subscribers_activating_one_card_at_once_get_it_once(postgres_only, series, make_subscriber):
    people = [make_subscriber(phone=f"+7916222000{i}", last_name=f"Гонка{i}") for i in range(4)]
    code = code_of(card(series, 5))
    barrier = threading.Barrier(len(people))
    outcomes = []

    def attempt(person):
        try:
            barrier.wait()
            outcomes.append(actions.activate(person, code=code, acting_user=None, client_ip=None).created)
        except ValidationError as exc:
            outcomes.append(sorted(_errors(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, outcomes)) == sorted(["True"] + ["['card_used']"] * 3)
    assert sum(balance(p) for p in people) == Decimal("500.00")
    assert LedgerTransaction.objects.filter(kind=TransactionKind.VOUCHER_ACTIVATION).count() == 1
    assert ledger.verify() == []


def test_codes_are_found_during_a_field_key_rotation_and_rehashed_after_it(series, make_subscriber, settings):
    old = settings.ABONENT_FIELD_KEY or settings.SECRET_KEY
    settings.ABONENT_FIELD_KEY, settings.ABONENT_FIELD_KEY_OLD = "the-new-field-key-0123456789", [old]
    subscriber = make_subscriber()
    actions.activate(subscriber, code=code_of(card(series, 1)), acting_user=None, client_ip=None)
    assert balance(subscriber) == Decimal("500.00")
    second = card(series, 2)
    plain = code_of(second)
    codes.rehash([second.pk])  # what the rotation's on_rotated does, once it re-encrypted the code
    settings.ABONENT_FIELD_KEY_OLD = []
    assert card(series, 2).code_digest == codes.digest(plain.replace("-", ""))
    actions.activate(subscriber, code=plain, acting_user=None, client_ip=None)
    assert balance(subscriber) == Decimal("1000.00")


# --- fixes after the attack review ---------------------------------------------------------------------------------


def test_voiding_cards_of_an_uneven_sale_one_by_one_takes_back_exactly_its_commission(admin):
    """3 cards of 10.00 at 3.33 %: the sale's commission is 1.00 (0.999 rounded), split 0.33, 0.33 and the rest,
    0.34, on the sale's last card: voided in any order, the dealer and the commission account are back at zero."""
    dealer = actions.do_create_dealer(name="Ларёк", commission_percent="3.33", acting_user=admin)
    series = actions.do_create_series(
        name="Мелочь", kind="topup", amount="10.00", count=3, expires_on=dt.date(2027, 1, 31), acting_user=admin
    )
    sale = actions.do_sell_vouchers(series, dealer=dealer, first=1, last=3, key=str(uuid.uuid4()), acting_user=admin)
    assert sale.commission == Decimal("1.00")
    assert [actions.commission_of(card(series, n), sale) for n in (1, 2, 3)] == [
        Decimal("0.33"),
        Decimal("0.33"),
        Decimal("0.34"),
    ]
    for n in (3, 1, 2):  # in any order
        actions.do_void_vouchers(series, first=n, last=n, reason="отзыв", acting_user=admin)
    assert balance_of(f"cash:dealer:{dealer.pk}") == Decimal("0.00")
    assert balance_of("revenue:voucher_commission") == Decimal("0.00")
    assert balance_of("vouchers") == Decimal("0.00")
    assert ledger.verify() == []


def test_the_same_sale_form_sent_twice_is_one_sale_and_another_range_with_its_key_is_refused(series, dealer, admin):
    key = str(uuid.uuid4())
    first = actions.do_sell_vouchers(series, dealer=dealer, first=6, last=7, key=key, acting_user=admin)
    again = actions.do_sell_vouchers(series, dealer=dealer, first=6, last=7, key=key, acting_user=admin)
    assert again.pk == first.pk
    with pytest.raises(ValidationError) as exc:
        actions.do_sell_vouchers(series, dealer=dealer, first=8, last=9, key=key, acting_user=admin)
    assert _errors(exc.value) == {"sale_key_reused"}
    assert card(series, 8).status == VoucherStatus.NEW
    assert balance_of(f"cash:dealer:{dealer.pk}") == Decimal("-2375.00") - Decimal("950.00")


def test_a_series_whose_total_would_not_fit_a_posting_is_refused(admin):
    with pytest.raises(ValidationError) as exc:
        actions.do_create_series(
            name="Огромная", kind="topup", amount="9999999999.99", count=2, expires_on=dt.date(2027, 12, 31),
            acting_user=admin,
        )  # fmt: skip
    assert _errors(exc.value) == {"amount_too_large"}
    assert actions.do_create_series(
        name="Крупная", kind="topup", amount="999999999.99", count=10, expires_on=dt.date(2027, 12, 31),
        acting_user=admin,
    ).count == 10  # fmt: skip


def test_an_anonymous_attempt_without_an_address_shares_one_bucket_a_subscriber_keeps_their_own(
    series, make_subscriber, settings
):
    settings.ABONENT_VOUCHER_MAX_FAILURES_PER_IP = 2
    for _ in range(2):
        throttle.begin("", None)
    with pytest.raises(throttle.TooManyAttempts):
        throttle.begin("", "not-an-address")
    # The console's card panel has no address: its subscriber is limited by their own key, not by the bucket.
    subscriber = make_subscriber()
    assert actions.activate(subscriber, code=code_of(card(series, 1)), acting_user=None, client_ip=None).created
