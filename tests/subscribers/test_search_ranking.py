"""Search ranks what an operator means first (issue 17): a surname query lists the subscribers with that name
before those whose patronymic or street merely contains it; initials and flat notation find the subscriber; an
exact account, contract, phone, login, IP or MAC opens the card, within the operator's branches only; the list
says how many were found. Runs on PostgreSQL and SQLite alike (``DATABASE_URL``)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from abonent.network import actions as network
from abonent.network.models import Session
from abonent.staff.permissions import Role
from abonent.subscribers import actions, selectors
from abonent.subscribers.actions import AddressData
from abonent.subscribers.selectors import SubscriberFilters, search_subscribers

pytestmark = pytest.mark.django_db

PATRONYMIC_HOLDERS = [
    ("Абрамов", "Пётр", "Иванович"),
    ("Алексеева", "Ольга", "Ивановна"),
    ("Белов", "Иван", "Иванович"),
    ("Волкова", "Анна", "Ивановна"),
    ("Гусев", "Олег", "Иванович"),
    ("Давыдова", "Нина", "Ивановна"),
    ("Егоров", "Иван", "Иванович"),
    ("Жукова", "Вера", "Ивановна"),
    ("Зайцев", "Павел", "Иванович"),
    ("Петрова", "Анна", "Ивановна"),
]
STREET_RESIDENTS = [
    ("Абакумов", "Олег", "Сергеевич"),
    ("Борисова", "Мария", "Олеговна"),
    ("Виноградов", "Юрий", "Павлович"),
    ("Громова", "Елена", "Юрьевна"),
    ("Денисов", "Максим", "Олегович"),
    ("Ершова", "Ирина", "Павловна"),
    ("Сидоров", "Олег", "Юрьевич"),
    ("Яковлева", "Нина", "Олеговна"),
]


def _phone(index: int) -> str:
    return f"+7903555{index:04d}"


@pytest.fixture
def nineteen(make_subscriber):
    """Иванов Иван Петрович and 18 others whose text contains "Иванов": 10 by patronymic, 8 by street; plus one
    who contains neither."""
    target = make_subscriber(
        last_name="Иванов",
        first_name="Иван",
        middle_name="Петрович",
        phone="+79161234567",
        addresses=[AddressData(city="Тверь", street="ул. Мира", house="3", apartment="7")],
    )
    others = []
    for index, (last, first, middle) in enumerate(PATRONYMIC_HOLDERS):
        others.append(
            make_subscriber(
                last_name=last,
                first_name=first,
                middle_name=middle,
                phone=_phone(index),
                addresses=[AddressData(city="Тверь", street="ул. Советская", house=str(index + 1))],
            )
        )
    for index, (last, first, middle) in enumerate(STREET_RESIDENTS, start=20):
        others.append(
            make_subscriber(
                last_name=last,
                first_name=first,
                middle_name=middle,
                phone=_phone(index),
                addresses=[AddressData(city="Тверь", street="ул. Ивановская", house=str(index))],
            )
        )
    make_subscriber(
        last_name="Смирнов",
        first_name="Олег",
        middle_name="Петрович",
        phone=_phone(90),
        addresses=[AddressData(city="Тверь", street="ул. Ленина", house="9")],
    )
    return target, others


def names(user, query, **kwargs) -> list[str]:
    return [s.display_name for s in search_subscribers(user, SubscriberFilters(query=query), **kwargs).results]


def all_pages(user, query, page_size) -> list[str]:
    found, number = [], 1
    while True:
        page = search_subscribers(user, SubscriberFilters(query=query), page=number, page_size=page_size)
        found += [s.display_name for s in page.results]
        if not page.has_next:
            return found
        number += 1


# --- ranking --------------------------------------------------------------------------------------------------


def test_the_namesake_comes_first_among_the_nineteen_who_contain_his_surname(nineteen, operator):
    target, others = nineteen

    page = search_subscribers(operator, SubscriberFilters(query="Иванов Иван"), count=True)

    assert page.results[0].pk == target.pk
    # Everyone else follows by name: before, he was 15th of 19, after everyone from "А" to "З".
    assert [s.display_name for s in page.results[1:]] == sorted(s.display_name for s in others)
    assert (page.count, page.count_exact) == (19, True)


@pytest.mark.parametrize("query", ["Иванов", "иванов иван", "ИВАНОВ ИВАН ПЕТРОВИЧ", "Иванов Иван Пе", "Иван"])
def test_a_query_that_starts_his_name_puts_him_first(nineteen, operator, query):
    target, _ = nineteen

    assert names(operator, query)[0] == target.display_name


def test_name_matches_come_first_in_name_order_then_the_rest_in_name_order(nineteen, make_subscriber, operator):
    _target, others = nineteen
    more = [
        make_subscriber(last_name="Иванова", first_name="Мария", middle_name="Петровна", phone=_phone(70)),
        make_subscriber(last_name="Иванов", first_name="Алексей", middle_name="Сергеевич", phone=_phone(71)),
        make_subscriber(last_name="Семёнова", first_name="Ольга", middle_name="Ивановна", phone=_phone(72)),
    ]

    found = names(operator, "Иванов", page_size=50)

    assert found == [
        "Иванов Алексей Сергеевич",
        "Иванов Иван Петрович",
        "Иванова Мария Петровна",
        *sorted([s.display_name for s in others] + ["Семёнова Ольга Ивановна"]),
    ]
    assert len(found) == 19 + len(more)


@pytest.mark.parametrize("page_size", [1, 2, 3, 4, 5, 7, 25])
def test_pages_cross_from_the_name_matches_to_the_rest_without_repeats_or_gaps(
    nineteen, make_subscriber, operator, page_size
):
    for index, first in enumerate(["Алексей", "Борис", "Виктор", "Глеб"]):
        make_subscriber(last_name="Иванов", first_name=first, middle_name="Олегович", phone=_phone(60 + index))
    everything = names(operator, "Иванов", page_size=100)

    paged = all_pages(operator, "Иванов", page_size)

    assert paged == everything
    assert len(paged) == len(set(paged)) == 23
    assert paged[:5] == [
        "Иванов Алексей Олегович",
        "Иванов Борис Олегович",
        "Иванов Виктор Олегович",
        "Иванов Глеб Олегович",
        "Иванов Иван Петрович",
    ]


def test_ranking_keeps_the_branch_limit_and_the_filters(nineteen, make_subscriber, make_staff, branch, other_branch):
    target, _ = nineteen
    elsewhere = make_subscriber(
        last_name="Иванов", first_name="Иван", middle_name="Андреевич", phone=_phone(80), branch_obj=other_branch
    )
    limited = make_staff(Role.OPERATOR, branches=[branch])

    found = names(limited, "Иванов Иван")

    assert found[0] == target.display_name and elsewhere.display_name not in found
    actions.do_close_subscriber(target, reason="уехал", acting_user=limited)
    closed = search_subscribers(limited, SubscriberFilters(query="Иванов Иван", status="closed"), count=True)
    active = search_subscribers(limited, SubscriberFilters(query="Иванов Иван", status="active"), count=True)
    assert [s.pk for s in closed.results] == [target.pk] and closed.count == 1
    assert target.pk not in {s.pk for s in active.results} and active.count == 18


# --- initials and flats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Иванов И.П.", "Иванов И. П.", "иванов и.п", "Иванов ИП", "Иванов И.П"])
def test_initials_find_him_first(nineteen, make_subscriber, operator, query):
    target, _ = nineteen
    other_initials = make_subscriber(last_name="Иванов", first_name="Игорь", middle_name="Сергеевич", phone=_phone(75))

    found = names(operator, query)

    assert found[0] == target.display_name
    assert other_initials.display_name not in found


def test_one_initial_after_the_surname_narrows_to_the_given_name(nineteen, make_subscriber, operator):
    target, _ = nineteen
    make_subscriber(last_name="Иванов", first_name="Олег", middle_name="Петрович", phone=_phone(76))

    assert names(operator, "Иванов И.")[0] == target.display_name
    assert names(operator, "Иванов О.")[0] == "Иванов Олег Петрович"


@pytest.fixture
def flats(make_subscriber):
    def at(last, house, apartment, building="", index=0):
        return make_subscriber(
            last_name=last,
            first_name="Анна",
            middle_name="",
            phone=_phone(40 + index),
            addresses=[
                AddressData(city="Тверь", street="ул. Ленина", house=house, building=building, apartment=apartment)
            ],
        )

    return {
        "5-12": at("Квартирова", "5", "12", index=1),
        "12-5": at("Обратнова", "12", "5", index=2),
        "5/2-12": at("Корпусова", "5", "12", building="2", index=3),
        "15-12": at("Соседова", "15", "12", index=4),
        "5-120": at("Высотова", "5", "120", index=5),
        "5-12 on another street": make_subscriber(
            last_name="Мирова",
            phone=_phone(46),
            addresses=[AddressData(city="Тверь", street="ул. Мира", house="5", apartment="12")],
        ),
    }


@pytest.mark.parametrize(
    "query", ["Ленина 5-12", "Ленина д5 кв12", "Ленина д.5 кв.12", "ул. Ленина, д. 5, кв. 12", "Ленина 5 12"]
)
def test_flat_notation_finds_house_5_flat_12_and_not_house_12_flat_5(flats, operator, query):
    found = set(names(operator, query))

    assert flats["5-12"].display_name in found
    for other in ("12-5", "15-12", "5-120", "5-12 on another street"):
        assert flats[other].display_name not in found


@pytest.mark.parametrize("query", ["Ленина 5/2-12", "Ленина д5 к2 кв12", "Ленина 5 корп.2 12"])
def test_a_building_in_the_flat_notation_finds_that_building_only(flats, operator, query):
    assert names(operator, query) == [flats["5/2-12"].display_name]


# --- exact identifiers open the card -------------------------------------------------------------------------


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def opens(client, query, **extra) -> str | None:
    """The card the list redirects to for ``query``, or None when it lists."""
    response = client.get(reverse("subscribers:list"), {"q": query}, **extra)
    if response.status_code == 302:
        return response["Location"]
    assert response.status_code == 200
    return None


@pytest.fixture
def reachable(nineteen, admin):
    """The target with a contract number of its own, a PPPoE login with a static IP, an IPoE MAC login, an installed
    ONT, and an open session with another IP."""
    target, _ = nineteen
    card = reverse("subscribers:card", args=[target.pk])
    network.do_create_login(
        target, acting_user=admin, kind="pppoe", username="ivanov-pppoe", password="secret-1", static_ip="10.20.30.40"
    )
    network.do_create_login(target, acting_user=admin, kind="ipoe_mac", username="00:1A:2B:3C:4D:5E")
    ont = actions.do_register_equipment(
        kind="ont", vendor="ZTE", serial_number="ZTEG00000001", mac_address="00:1e:73:aa:bb:cc", acting_user=admin
    )
    actions.do_assign_equipment(ont, target, ownership="rent", acting_user=admin)
    nas = network.do_create_nas(
        acting_user=admin, name="nas-1", ip_address="127.0.0.1", secret="a-long-shared-secret", vendor="mikrotik"
    )
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    Session.objects.create(
        nas=nas,
        unique_id="u-1",
        acct_session_id="81a00001",
        subscriber=target,
        username="ivanov-pppoe",
        framed_ip="100.64.0.10",
        started_at=now,
        updated_at=now,
    )
    return target, card


@pytest.mark.parametrize(
    "query",
    [
        "+7 916 123-45-67",
        "8 (916) 123-45-67",
        "89161234567",
        "9161234567",
        "ivanov-pppoe",
        "10.20.30.40",
        "100.64.0.10",
        "00-1e-73-aa-bb-cc",
        "001E.73AA.BBCC",
        "00:1a:2b:3c:4d:5e",
    ],
)
def test_an_exact_phone_login_ip_or_mac_opens_the_card(reachable, operator, query):
    _target, card = reachable

    assert opens(client_of(operator), query) == card


def test_an_exact_account_or_contract_number_opens_the_card(reachable, operator):
    target, card = reachable
    client = client_of(operator)

    assert opens(client, target.account_number) == card
    assert opens(client, f"  {target.account_number} ") == card
    assert opens(client, target.contracts.get().number) == card


def test_the_navbar_box_submits_to_the_list_and_opens_the_card(reachable, operator):
    target, card = reachable
    client = client_of(operator)

    response = client.get(reverse("subscribers:list"), {"q": "8 916 123 45 67"}, follow=True)

    assert response.redirect_chain == [(card, 302)]
    assert target.display_name in response.content.decode()


def test_another_branchs_subscriber_is_never_opened_nor_shown(
    nineteen, make_subscriber, make_staff, branch, other_branch
):
    stranger = make_subscriber(
        last_name="Чужаков", first_name="Пётр", phone="+79267776655", branch_obj=other_branch, addresses=[]
    )
    limited = client_of(make_staff(Role.OPERATOR, branches=[branch]))

    for query in (stranger.account_number, "+7 926 777-66-55"):
        response = limited.get(reverse("subscribers:list"), {"q": query})
        assert response.status_code == 200
        body = response.content.decode()
        assert "Чужаков" not in body and "Nothing found." in body
        quick = limited.get(reverse("subscribers:quick"), {"q": query}).content.decode()
        assert "Чужаков" not in quick and "exact match" not in quick
    assert selectors.find_by_identifier(make_staff(Role.OPERATOR, branches=[branch]), stranger.account_number) is None


def test_a_phone_two_subscribers_share_lists_both(nineteen, make_subscriber, operator):
    _target, _ = nineteen
    make_subscriber(last_name="Иванова", first_name="Мария", middle_name="Петровна", phone="+79161234567")

    response = client_of(operator).get(reverse("subscribers:list"), {"q": "+79161234567"})

    assert response.status_code == 200
    body = response.content.decode()
    assert "Иванов Иван Петрович" in body and "Иванова Мария Петровна" in body


def test_live_results_while_typing_never_jump(reachable, operator):
    target, _ = reachable
    response = client_of(operator).get(
        reverse("subscribers:list"),
        {"q": target.account_number},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )

    assert response.status_code == 200
    assert target.display_name in response.content.decode()


def test_a_name_query_with_one_match_lists_it_and_enter_opens_it(nineteen, operator):
    target, _ = nineteen

    body = client_of(operator).get(reverse("subscribers:list"), {"q": "Иванов Иван Петрович"}).content.decode()

    assert "Found: 1" in body and "Enter opens it" in body
    assert f'data-single-result="{reverse("subscribers:card", args=[target.pk])}"' in body
    assert 'data-query="Иванов Иван Петрович"' in body


# --- counts ---------------------------------------------------------------------------------------------------


def test_the_list_says_how_many_were_found(nineteen, operator):
    body = client_of(operator).get(reverse("subscribers:list"), {"q": "Иванов"}).content.decode()

    assert "Found: 19" in body


def test_a_count_past_the_cap_says_more_than(nineteen, operator, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CAP", 5)

    many = search_subscribers(operator, SubscriberFilters(query="Иванов"), page_size=3, count=True)
    few = search_subscribers(operator, SubscriberFilters(query="Ивановская"), page_size=3, count=True)
    everyone = search_subscribers(operator, SubscriberFilters(), page_size=3, count=True)
    body = client_of(operator).get(reverse("subscribers:list"), {"q": "Иванов"}).content.decode()

    assert (many.count, many.count_exact) == (5, False)
    assert (few.count, few.count_exact) == (5, False)  # 8 on the street
    assert (everyone.count, everyone.count_exact) == (5, False)
    assert "Found: more than 5" in body


def test_counts_are_exact_under_the_cap_on_any_page(nineteen, operator):
    for page in (1, 2, 4):
        result = search_subscribers(operator, SubscriberFilters(query="Иванов"), page=page, page_size=5, count=True)
        assert (result.count, result.count_exact) == (19, True)
    street = search_subscribers(operator, SubscriberFilters(query="Ивановская"), page_size=3, count=True)
    assert (street.count, street.count_exact) == (8, True)


# --- the navbar's live results ---------------------------------------------------------------------------------


def test_the_quick_search_lists_the_first_matches_as_a_listbox(nineteen, operator):
    target, _ = nineteen

    body = client_of(operator).get(reverse("subscribers:quick"), {"q": "Иванов"}).content.decode()

    assert 'role="listbox"' in body
    options = body.count('role="option"')
    assert options == 8 + 1  # eight subscribers and "All results"
    assert body.index(target.display_name) < body.index("Абрамов Пётр Иванович")
    assert "All results" in body and "data-autoselect" not in body


def test_the_quick_search_puts_an_exact_identifier_first_and_chosen(reachable, operator):
    _target, card = reachable

    body = client_of(operator).get(reverse("subscribers:quick"), {"q": "ivanov-pppoe"}).content.decode()

    assert "data-autoselect" in body and "exact match" in body
    assert body.index(f'data-href="{card}"') < body.index('id="global-search-option-all"')


def test_the_quick_search_says_when_a_query_is_too_short_or_finds_nothing(nineteen, operator):
    client = client_of(operator)

    assert "Type at least 3 characters" in client.get(reverse("subscribers:quick"), {"q": "ив"}).content.decode()
    assert "Nothing found." in client.get(reverse("subscribers:quick"), {"q": "нетакого"}).content.decode()
    assert client.get(reverse("subscribers:quick"), {"q": ""}).content.decode().strip() == ""


def test_every_page_has_the_search_box_with_its_shortcut(operator):
    body = client_of(operator).get(reverse("subscribers:list")).content.decode()

    assert 'id="global-search-input"' in body and 'role="combobox"' in body
    assert 'aria-keyshortcuts="/"' in body and f'hx-get="{reverse("subscribers:quick")}"' in body
    assert 'aria-controls="global-search-results"' in body


def test_the_quick_search_needs_a_login(db):
    response = Client().get(reverse("subscribers:quick"), {"q": "Иванов"})

    assert response.status_code == 302


def test_a_count_that_would_take_too_long_says_what_the_page_proves(nineteen, operator, monkeypatch):
    monkeypatch.setattr(selectors, "_capped_count", lambda qs, terms: None)

    page = search_subscribers(operator, SubscriberFilters(status="active"), page=2, page_size=5, count=True)
    body = client_of(operator).get(reverse("subscribers:list"), {"q": "Иванов"}).content.decode()

    assert (page.count, page.count_exact) == (10, False)
    assert "Found: 19" in body  # one page holds them all: no count needed


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_the_count_budget_ends_a_slow_count_and_leaves_the_connection_usable(operator):
    with pytest.raises(OperationalError), selectors._planner(timeout_ms=20), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.5)")

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
    assert search_subscribers(operator, SubscriberFilters(), count=True).count == 0
