import pytest
from django.core.exceptions import ValidationError

from abonent.staff.permissions import Role
from abonent.subscribers import actions
from abonent.subscribers.actions import AddressData
from abonent.subscribers.search import query_terms
from abonent.subscribers.selectors import MAX_QUERY_CHARS, MAX_QUERY_TERMS, SubscriberFilters, search_subscribers


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


def test_a_query_of_many_words_is_refused_on_q(people, operator):
    # 1,500 words were 1,500 LIKEs: SQLite refused the expression tree (a 500), PostgreSQL ran them all.
    query = " ".join(f"слово{i}" for i in range(MAX_QUERY_TERMS + 1))

    with pytest.raises(ValidationError) as caught:
        search_subscribers(operator, SubscriberFilters(query=query))

    assert [(e.code, e.message) for e in caught.value.error_dict["q"]] == [
        ("query_too_many_words", "Search for at most 12 words.")
    ]


def test_filler_and_repeated_words_do_not_count_towards_the_word_limit(people, operator):
    query = "г. Тверь, ул. Ленина, д. 5, кв. 12, Семёнов Иван Петрович, Семёнов Иван Петрович"

    assert len(query.split()) == 14
    assert names(operator, query) == ["Семёнов"]


def test_a_query_over_the_character_limit_is_refused_on_q(people, operator):
    with pytest.raises(ValidationError) as caught:
        search_subscribers(operator, SubscriberFilters(query="а" * (MAX_QUERY_CHARS + 1)))

    assert [e.code for e in caught.value.error_dict["q"]] == ["query_too_long"]


def test_the_console_says_why_a_long_query_finds_nothing(people, operator_client):
    query = " ".join(f"слово{i}" for i in range(1500))

    page = operator_client.get("/staff/subscribers/", {"q": query})
    results = operator_client.get(
        "/staff/subscribers/", {"q": query}, headers={"HX-Request": "true", "HX-Target": "results"}
    )

    assert page.status_code == 200 and results.status_code == 200
    for response in (page, results):
        body = response.content.decode()
        assert "Search for at most 200 characters." in body
        assert "Семёнов" not in body and "Петрова" not in body


def test_the_api_refuses_a_long_query_with_a_field_code(people, api_client):
    response = api_client.get("/api/v1/subscribers", {"q": " ".join(f"слово{i}" for i in range(1500))[:200]})

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "q", "code": "query_too_many_words", "message": "Search for at most 12 words."}
    ]
