import pytest

from abonent.staff.permissions import Role
from abonent.subscribers import actions
from abonent.subscribers.actions import AddressData
from abonent.subscribers.search import query_terms
from abonent.subscribers.selectors import SubscriberFilters, search_subscribers


@pytest.fixture
def people(make_subscriber, operator, other_branch):
    ivanov = make_subscriber(
        last_name="Семёнов",
        first_name="Иван",
        phone="+79161234567",
        addresses=[AddressData(city="Тверь", street="ул. Ленина", house="5", apartment="12")],
    )
    petrova = make_subscriber(
        last_name="Петрова",
        first_name="Анна",
        middle_name="Сергеевна",
        phone="+79031112233",
        addresses=[AddressData(city="Тверь", street="ул. Мира", house="15")],
    )
    klin = make_subscriber(
        last_name="Клинов",
        first_name="Пётр",
        phone="+79035556677",
        branch_obj=other_branch,
        addresses=[AddressData(city="Клин", street="ул. Ленина", house="7")],
    )
    ont = actions.do_register_equipment(
        kind="ont", vendor="ZTE", serial_number="ZTEGC8A1B2C3", mac_address="00:1e:73:aa:bb:cc", acting_user=operator
    )
    actions.do_assign_equipment(ont, petrova, ownership="rent", acting_user=operator)
    return {"ivanov": ivanov, "petrova": petrova, "klin": klin}


def names(user, query="", **filters):
    page = search_subscribers(user, SubscriberFilters(query=query, **filters))
    return [s.last_name for s in page.results]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("семенов", ["Семёнов"]),  # ё and е are the same letter to a searcher
        ("СЕМЁНОВ ИВАН", ["Семёнов"]),
        ("8 (916) 123-45-67", ["Семёнов"]),
        ("+7 916 123 45 67", ["Семёнов"]),
        ("1234567", ["Семёнов"]),  # the last digits an operator hears on the phone
        ("ленина", ["Клинов", "Семёнов"]),
        ("Ленина д.5 кв.12", ["Семёнов"]),
        ("ул. Ленина, 7", ["Клинов"]),
        ("00-1E-73-AA-BB-CC", ["Петрова"]),
        ("001e.73aa.bbcc", ["Петрова"]),
        ("ZTEGC8A1B2C3", ["Петрова"]),
        ("нетакого", []),
    ],
)
def test_search_finds_by_name_phone_address_mac_and_serial(people, operator, query, expected):
    assert names(operator, query) == expected


def test_search_by_account_and_contract_number(people, operator):
    number = people["petrova"].account_number
    assert names(operator, number) == ["Петрова"]


def test_branch_limited_staff_never_see_other_branches(people, make_staff, branch):
    limited = make_staff(Role.OPERATOR, branches=[branch])
    assert names(limited, "ленина") == ["Семёнов"]
    assert names(limited) == ["Петрова", "Семёнов"]


def test_filters_combine_with_the_query(people, operator, branch, other_branch):
    assert names(operator, "ленина", branch_id=other_branch.pk) == ["Клинов"]
    actions.do_close_subscriber(people["klin"], reason="left", acting_user=operator)
    assert names(operator, status="closed") == ["Клинов"]
    assert names(operator, "ленина", status="active") == ["Семёнов"]


def test_too_short_query_says_so_instead_of_listing_everyone(people, operator):
    page = search_subscribers(operator, SubscriberFilters(query="ив"))
    assert page.query_too_short and page.results == []


def test_pages_say_whether_there_is_more(people, operator):
    first = search_subscribers(operator, SubscriberFilters(), page=1, page_size=2)
    second = search_subscribers(operator, SubscriberFilters(), page=2, page_size=2)
    assert [s.last_name for s in first.results] == ["Клинов", "Петрова"] and first.has_next
    assert [s.last_name for s in second.results] == ["Семёнов"] and not second.has_next


def test_query_terms_ignore_address_filler_words():
    assert query_terms("г. Тверь, ул. Ленина, д. 5") == ["тверь", "ленина", "5"]
