"""The old system's account number beside ours (docs/adr/0019): its rules, the single and the bulk action, numbers we
issue passing over old ones, the races, and every staff entry point (search, card, list, edit form, REST API)."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client

from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role
from abonent.subscribers import actions, selectors
from abonent.subscribers.accounts import subscriber_by_account
from abonent.subscribers.actions import SubscriberData
from abonent.subscribers.models import Subscriber
from abonent.subscribers.validators import make_account_number, validate_legacy_account
from tests.concurrency import together

SEED = "173829"  # the seed article's account in the old billing

pytestmark = pytest.mark.django_db


def legacy_events(subscriber) -> list[tuple]:
    return [
        (e.before.get("legacy_account"), e.after.get("legacy_account"), e.reason)
        for e in AuditEvent.objects.filter(subscriber_id=subscriber.pk, action="subscriber.updated").order_by("id")
    ]


def field_code(exc: ValidationError) -> str:
    return exc.error_dict["legacy_account"][0].code


# --- rules ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [(SEED, SEED), (" 173829 ", SEED), ("007315", "007315"), ("0", "0"), ("9" * 20, "9" * 20)],
)
def test_an_old_number_is_1_to_20_ascii_digits_kept_exactly_as_given(typed, kept):
    assert validate_legacy_account(typed) == kept


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("١٧٣٨٢٩", "legacy_account_format"),  # Arabic-Indic digits: isdigit() says yes, the receipts say no
        ("１７３８２９", "legacy_account_format"),  # full-width
        ("173-829", "legacy_account_format"),
        ("17 3829", "legacy_account_format"),
        ("A173829", "legacy_account_format"),
        ("9" * 21, "legacy_account_length"),
    ],
)
def test_anything_else_is_refused_with_a_field_code_and_nothing_written(make_subscriber, admin, typed, code):
    subscriber = make_subscriber()
    with pytest.raises(ValidationError) as exc:
        actions.do_set_legacy_account(subscriber, typed, by=admin, reason="migration")
    assert field_code(exc.value) == code
    subscriber.refresh_from_db()
    assert subscriber.legacy_account is None and legacy_events(subscriber) == []


def test_setting_changing_and_clearing_it_is_audited_and_searchable(make_subscriber, admin):
    subscriber = make_subscriber()
    actions.do_set_legacy_account(subscriber, SEED, by=admin, reason="migration from Mikbill")
    subscriber.refresh_from_db()
    assert subscriber.legacy_account == SEED
    assert subscriber.search_text.startswith(f"{subscriber.account_number} | {SEED} | иванов")
    actions.do_set_legacy_account(subscriber, "0173829", by=admin, reason="typo")
    actions.do_set_legacy_account(subscriber, "", by=admin, reason="wrong account")
    subscriber.refresh_from_db()
    assert subscriber.legacy_account is None and SEED not in subscriber.search_text
    assert legacy_events(subscriber) == [
        (None, SEED, "migration from Mikbill"),
        (SEED, "0173829", "typo"),
        ("0173829", None, "wrong account"),
    ]


def test_leading_zeros_make_another_number_and_lookups_are_exact(make_subscriber, admin):
    with_zeros = make_subscriber(last_name="Нулёв")
    without = make_subscriber(last_name="Безнулёв", phone="+79161234568")
    actions.do_set_legacy_account(with_zeros, "007315", by=admin)
    actions.do_set_legacy_account(without, "7315", by=admin)
    assert subscriber_by_account("007315") == with_zeros
    assert subscriber_by_account("7315") == without
    assert subscriber_by_account("07315") is None


def test_an_old_number_held_by_another_or_equal_to_ours_is_refused(make_subscriber, admin):
    first = make_subscriber()
    second = make_subscriber(last_name="Петров", phone="+79161234568")
    actions.do_set_legacy_account(first, SEED, by=admin)
    for taken in (SEED, first.account_number):
        with pytest.raises(ValidationError) as exc:
            actions.do_set_legacy_account(second, taken, by=admin)
        assert field_code(exc.value) == "legacy_account_taken"
    with pytest.raises(ValidationError) as exc:
        actions.do_set_legacy_account(second, second.account_number, by=admin)
    assert field_code(exc.value) == "legacy_account_own"
    second.refresh_from_db()
    assert second.legacy_account is None and legacy_events(second) == []


def test_our_number_typed_at_creation_may_not_be_someones_old_number(make_subscriber, admin):
    holder = make_subscriber()
    shaped = make_account_number(20000000)  # one of ours by shape, not yet issued
    actions.do_set_legacy_account(holder, shaped, by=admin)
    before = Subscriber.objects.count()
    with pytest.raises(ValidationError) as exc:
        make_subscriber(last_name="Петров", phone="+79161234568", account_number=shaped)
    assert exc.value.error_dict["account_number"][0].code == "account_number_taken"
    assert Subscriber.objects.count() == before


def test_we_never_issue_a_number_someone_holds_as_an_old_one(make_subscriber, admin):
    first = make_subscriber()
    next_two = [make_account_number(int(first.account_number[:-1]) + i) for i in (1, 2)]
    actions.do_set_legacy_account(first, next_two[0], by=admin, reason="migrated, shaped like ours")
    second = make_subscriber(last_name="Петров", phone="+79161234568")
    assert second.account_number == next_two[1]
    assert subscriber_by_account(next_two[0]) == first


def test_a_new_subscriber_can_carry_its_old_number_from_the_start(branch, admin):
    subscriber = actions.do_create_subscriber(
        SubscriberData(branch_id=branch.pk, last_name="Иванов", first_name="Иван", legacy_account=SEED),
        acting_user=admin,
    )
    assert subscriber.legacy_account == SEED and SEED in Subscriber.objects.get(pk=subscriber.pk).search_text
    assert AuditEvent.objects.get(action="subscriber.created").after["legacy_account"] == SEED


def test_a_user_without_the_right_or_the_branch_cannot_set_it(make_subscriber, make_staff, other_branch):
    subscriber = make_subscriber()
    for user in (make_staff(Role.CASHIER), make_staff(Role.OPERATOR, branches=[other_branch])):
        with pytest.raises(PermissionDenied):
            actions.do_set_legacy_account(subscriber, SEED, by=user)
    subscriber.refresh_from_db()
    assert subscriber.legacy_account is None


# --- bulk -----------------------------------------------------------------------------------------------------------


def test_the_bulk_form_writes_the_good_pairs_and_names_each_bad_one(make_subscriber, admin):
    a, b, c, d, e = (make_subscriber(last_name=n, phone=f"+7916123456{i}") for i, n in enumerate("АБВГД"))
    actions.do_set_legacy_account(e, "555", by=admin)
    result = actions.do_set_legacy_accounts(
        [
            (a.pk, SEED),
            (b.pk, "١٧٣٨٢٩"),
            (c.pk, "42"),
            (d.pk, "42"),
            (e.pk, "555"),  # unchanged: nothing to do
            (b.pk + 1000, "77"),
            (c.pk, e.account_number),
        ],
        by=admin,
        reason="import",
    )
    assert result.changed == [a.pk, d.pk]
    assert {pk: err.code for pk, err in result.errors.items()} == {
        b.pk: "legacy_account_format",
        c.pk: "legacy_account_taken",  # the last pair of c counts: e's own number
        b.pk + 1000: "subscriber_invalid",
    }
    assert dict(Subscriber.objects.values_list("pk", "legacy_account")) == {
        a.pk: SEED,
        b.pk: None,
        c.pk: None,
        d.pk: "42",
        e.pk: "555",
    }
    a.refresh_from_db()
    assert a.search_text.startswith(f"{a.account_number} | {SEED} | ")
    assert legacy_events(a) == [(None, SEED, "import")]


def test_the_bulk_form_refuses_one_number_for_two_and_may_swap_two(make_subscriber, admin):
    a, b, c = (make_subscriber(last_name=n, phone=f"+7916123456{i}") for i, n in enumerate("АБВ"))
    actions.do_set_legacy_accounts([(a.pk, "1"), (b.pk, "2")], by=admin)
    result = actions.do_set_legacy_accounts([(a.pk, "2"), (b.pk, "1"), (c.pk, "3"), (c.pk, "3")], by=admin)
    assert result.errors == {} and result.changed == [a.pk, b.pk, c.pk]
    assert dict(Subscriber.objects.values_list("pk", "legacy_account")) == {a.pk: "2", b.pk: "1", c.pk: "3"}
    twice = actions.do_set_legacy_accounts([(a.pk, "9"), (b.pk, "9")], by=admin)
    assert {err.code for err in twice.errors.values()} == {"legacy_account_duplicate"} and twice.changed == []
    # A swap whose other half is refused frees nothing.
    half = actions.do_set_legacy_accounts([(a.pk, "1"), (b.pk, "x")], by=admin)
    assert {pk: err.code for pk, err in half.errors.items()} == {
        a.pk: "legacy_account_taken",
        b.pk: "legacy_account_format",
    }
    assert dict(Subscriber.objects.values_list("pk", "legacy_account")) == {a.pk: "2", b.pk: "1", c.pk: "3"}


def test_the_bulk_form_keeps_its_branch_scope(make_subscriber, make_staff, other_branch, admin):
    mine = make_subscriber()
    theirs = make_subscriber(last_name="Петров", phone="+79161234568", branch_obj=other_branch)
    operator = make_staff(Role.OPERATOR, branches=[mine.branch])
    result = actions.do_set_legacy_accounts([(mine.pk, "11"), (theirs.pk, "12")], by=operator)
    assert result.changed == [mine.pk] and result.errors[theirs.pk].code == "branch_denied"
    assert Subscriber.objects.get(pk=theirs.pk).legacy_account is None


# --- races (PostgreSQL: SQLite has one writer at a time) -------------------------------------------------------------

needs_pg = pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")


@needs_pg
@pytest.mark.django_db(transaction=True)
def test_two_operators_setting_one_number_at_once_one_wins_the_other_gets_a_field_error(make_subscriber, admin):
    a = make_subscriber()
    b = make_subscriber(last_name="Петров", phone="+79161234568")
    outcomes = together(
        lambda: actions.do_set_legacy_account(a, SEED, by=admin),
        lambda: actions.do_set_legacy_account(b, SEED, by=admin),
    )
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 1 and field_code(errors[0]) == "legacy_account_taken"
    assert Subscriber.objects.filter(legacy_account=SEED).count() == 1
    assert AuditEvent.objects.filter(action="subscriber.updated").count() == 1


@needs_pg
@pytest.mark.django_db(transaction=True)
def test_setting_an_old_number_while_we_issue_the_same_one_never_gives_it_twice(make_subscriber, admin):
    holder = make_subscriber()
    for _round in range(3):
        upcoming = make_account_number(int(Subscriber.objects.order_by("-pk")[0].account_number[:-1]) + 1)
        outcomes = together(
            lambda upcoming=upcoming: actions.do_set_legacy_account(holder, upcoming, by=admin),
            lambda: make_subscriber(last_name="Новый", phone=None),
        )
        created = outcomes[1]
        assert isinstance(created, Subscriber), outcomes
        holder.refresh_from_db()
        if isinstance(outcomes[0], Exception):  # ours was issued first: the old number is refused
            assert field_code(outcomes[0]) == "legacy_account_taken" and created.account_number == upcoming
        else:  # the old number was set first: ours passed over it
            assert holder.legacy_account == upcoming and created.account_number != upcoming
        numbers = list(Subscriber.objects.values_list("account_number", flat=True))
        olds = list(Subscriber.objects.exclude(legacy_account=None).values_list("legacy_account", flat=True))
        assert not set(numbers) & set(olds)


# --- staff entry points ---------------------------------------------------------------------------------------------


@pytest.fixture
def migrated(make_subscriber, admin):
    subscriber = make_subscriber(last_name="Семёнов")
    actions.do_set_legacy_account(subscriber, SEED, by=admin, reason="migration")
    return subscriber


def test_the_selector_takes_ours_first_then_the_old_one(migrated, operator):
    assert subscriber_by_account(SEED) == migrated
    assert subscriber_by_account(migrated.account_number) == migrated
    assert subscriber_by_account("1738290") is None and subscriber_by_account("17382") is None
    assert selectors.get_subscriber_by_account(operator, SEED) == migrated


def test_search_for_the_old_number_opens_the_card(migrated, operator, operator_client):
    assert selectors.find_by_identifier(operator, SEED) == migrated
    assert selectors.find_by_identifier(operator, "1738290") is None
    response = operator_client.get("/staff/subscribers/", {"q": SEED})
    assert response.status_code == 302 and response["Location"] == f"/staff/subscribers/{migrated.pk}/"


def test_the_card_header_and_the_list_show_the_old_number(migrated, operator_client, make_subscriber):
    make_subscriber(last_name="Семёнова", phone="+79161234568")
    card = operator_client.get(f"/staff/subscribers/{migrated.pk}/").content.decode()
    assert f'id="legacy-account">old No. {SEED}</span>' in card
    listing = operator_client.get("/staff/subscribers/", {"q": "Семёнов"}).content.decode()
    assert listing.count("legacy-account") == 1 and f"old No. {SEED}" in listing


def test_the_edit_form_sets_and_refuses_the_old_number(make_subscriber, operator_client):
    subscriber = make_subscriber()
    form = {
        "kind": "individual",
        "branch_id": subscriber.branch_id,
        "last_name": "Иванов",
        "first_name": "Иван",
        "middle_name": "Петрович",
        "reason": "old receipt shown",
    }
    bad = operator_client.post(f"/staff/subscribers/{subscriber.pk}/edit/", {**form, "legacy_account": "١٧٣٨٢٩"})
    assert bad.status_code == 422 and "digits 0-9 only" in bad.content.decode()
    assert Subscriber.objects.get(pk=subscriber.pk).legacy_account is None
    good = operator_client.post(f"/staff/subscribers/{subscriber.pk}/edit/", {**form, "legacy_account": SEED})
    assert good.status_code == 302
    assert Subscriber.objects.get(pk=subscriber.pk).legacy_account == SEED
    event = AuditEvent.objects.filter(action="subscriber.updated").latest("id")
    assert (event.before, event.after, event.reason) == (
        {"legacy_account": None},
        {"legacy_account": SEED},
        "old receipt shown",
    )


def api(token):
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_the_api_reads_writes_and_finds_by_the_old_number(make_subscriber, api_token):
    subscriber = make_subscriber()
    client = api(api_token)
    url = f"/api/v1/subscribers/{subscriber.pk}"
    for typed, code in (("9" * 21, "legacy_account_length"), ("١٧٣٨٢٩", "legacy_account_format")):
        response = client.patch(url, {"legacy_account": typed}, content_type="application/json")
        assert response.status_code == 422
        assert [(e["field"], e["code"]) for e in response.json()["error"]["fields"]] == [("legacy_account", code)]
    assert Subscriber.objects.get(pk=subscriber.pk).legacy_account is None
    response = client.patch(url, {"legacy_account": SEED}, content_type="application/json")
    assert response.status_code == 200 and response.json()["legacy_account"] == SEED
    assert client.get(f"/api/v1/subscribers/by-account/{SEED}").json()["id"] == subscriber.pk
    assert client.get("/api/v1/subscribers", {"q": SEED}).json()["items"][0]["legacy_account"] == SEED
    other = make_subscriber(last_name="Петров", phone="+79161234568")
    taken = client.patch(f"/api/v1/subscribers/{other.pk}", {"legacy_account": SEED}, content_type="application/json")
    assert taken.status_code == 422 and taken.json()["error"]["fields"][0]["code"] == "legacy_account_taken"
    cleared = client.patch(url, {"legacy_account": None}, content_type="application/json")
    assert cleared.status_code == 200 and cleared.json()["legacy_account"] is None
    assert client.get(f"/api/v1/subscribers/by-account/{SEED}").status_code == 404


def test_the_seedings_bulk_path_passes_over_old_numbers_too(make_subscriber, admin):
    import io

    from abonent.core.seeding import SeedContext
    from abonent.subscribers.seeding import seed_subscribers

    first = make_subscriber()
    serial = int(first.account_number[:-1])
    taken = make_account_number(serial + 2)
    actions.do_set_legacy_account(first, taken, by=admin, reason="migrated, shaped like ours")
    seed_subscribers(SeedContext(subscribers=3, out=io.StringIO()))
    seeded = sorted(Subscriber.objects.exclude(pk=first.pk).values_list("account_number", flat=True))
    assert seeded == [make_account_number(serial + i) for i in (1, 3, 4)]
