"""The dunning console: the access badge on the card, the Access panel and its actions, the subscriber list's
Access column and filter, the dunning queue with its totals and CSV, permissions and branch scoping."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.dunning import actions
from abonent.dunning.models import AccessState, AccessTransition
from abonent.dunning.selectors import state_of
from abonent.staff.permissions import Role

from .console_data import LATER, OWED, RESTRICTED_AT, bring_to, monthly_plan, paying_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(make_plan):
    return monthly_plan(make_plan)


@pytest.fixture
def customer(make_subscriber, plan, admin, settings):
    settings.ABONENT_QUIET_HOURS = ""
    return paying_subscriber(make_subscriber, plan, admin)


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def header(html: str) -> str:
    """The card's title (name, status and access badges)."""
    return re.search(r'<h1[^>]*id="subscriber-name".*?</h1>', html, re.S).group(0)


COLOURS = {
    "active": "text-bg-success",
    "warned": "text-bg-warning",
    "restricted": "background-color:#fd7e14",
    "suspended": "text-bg-danger",
    "blocked": "text-bg-danger",
    "terminated": "text-bg-danger",
    "frozen": "text-bg-primary",
}
LABELS = {
    "active": "Active",
    "warned": "Warned",
    "restricted": "Restricted",
    "suspended": "Suspended",
    "blocked": "Blocked by operator",
    "terminated": "Terminated",
    "frozen": "Frozen",
}


@pytest.mark.parametrize("state", list(LABELS))
def test_the_card_header_shows_the_access_state_with_its_colour(state, customer, admin, operator):
    moment = bring_to(customer, state, admin)
    assert state_of(customer.pk) == state
    with clock.travel_to(moment):
        html = client_of(operator).get(reverse("subscribers:card", args=[customer.pk])).content.decode()
    title = header(html)
    badge = re.search(r'<span class="badge[^"]*access-badge access-(\w+)[^>]*>([^<]*)</span>', title)
    assert badge.group(1, 2) == (state, LABELS[state])
    assert COLOURS[state] in badge.group(0)
    # The account's own green "Active" is not shown beside it: only the access state speaks.
    assert title.count("text-bg-success") == (1 if state == "active" else 0)


def test_a_debtors_header_says_what_to_pay_and_since_when(customer, admin, operator):
    bring_to(customer, "restricted", admin)
    with clock.travel_to(RESTRICTED_AT):
        title = header(client_of(operator).get(reverse("subscribers:card", args=[customer.pk])).content.decode())
    assert "Restricted" in title and ">Active<" not in title
    assert "owes 600.00\xa0₽: pay 600.00\xa0₽ to restore access" in title
    assert "since 12/01/2026" in title


def test_a_warned_header_says_when_the_money_runs_out(customer, admin, operator):
    moment = bring_to(customer, "warned", admin)
    with clock.travel_to(moment):
        title = header(client_of(operator).get(reverse("subscribers:card", args=[customer.pk])).content.decode())
    assert "money lasts 3 days, until 12/01/2026" in title


def test_an_exemption_shows_on_the_badge_and_in_the_panel(customer, admin, operator):
    bring_to(customer, "restricted", admin)
    with clock.travel_to(RESTRICTED_AT):
        actions.do_create_exemption(
            subscriber=customer, reason="Больница", expires_on=dt.date(2026, 12, 31), acting_user=admin
        )
        html = client_of(operator).get(reverse("subscribers:card", args=[customer.pk])).content.decode()
    assert "exempt from blocking until 12/31/2026" in header(html)
    panel = html[html.index('id="panel-access"') :]
    assert "Больница" in panel and "In force" in panel


def test_the_engineer_without_dunning_view_sees_the_state_but_not_the_panel(customer, admin, make_staff):
    """Issue 17: the card said a green "Active" (the open account's status) to an engineer looking at a debtor
    sent to the payment page. Everyone who opens the card sees the access state; the panel stays DUNNING_VIEW's."""
    bring_to(customer, "restricted", admin)
    html = client_of(make_staff(Role.ENGINEER)).get(reverse("subscribers:card", args=[customer.pk])).content.decode()
    header = html[html.index('id="card-header"') : html.index("</header>")]
    assert "access-badge access-restricted" in header and ">Restricted</span>" in header
    assert "account-status" not in header and "text-bg-success" not in header
    assert 'id="panel-access"' not in html


def test_the_panel_lists_transitions_and_offers_what_the_role_may_do(customer, admin, operator, make_staff):
    bring_to(customer, "restricted", admin)
    url = reverse("subscribers:card", args=[customer.pk])
    with clock.travel_to(RESTRICTED_AT):
        as_operator = client_of(operator).get(url).content.decode()
        as_cashier = client_of(make_staff(Role.CASHIER)).get(url).content.decode()
        as_admin = client_of(admin).get(url).content.decode()
    panel = as_operator[as_operator.index('id="panel-access"') :]
    assert "Active → Restricted" in panel and "Periodic check" in panel
    assert "Block access" in panel and "Terminate access" not in panel  # the administrator's
    assert "Block access" not in as_cashier and 'id="panel-access"' in as_cashier
    assert "Terminate access" in as_admin


@pytest.fixture
def mid_november():
    """A day the customer is paid up (the tests' subscriber lives in November 2026)."""
    with clock.travel_to(dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)):
        yield


def test_an_operator_blocks_and_unblocks_from_the_card(customer, operator, mid_november):
    client = client_of(operator)
    response = client.post(reverse("dunning:block", args=[customer.pk]), {"reason": "Порча оборудования"})
    assert response.status_code == 302
    state = AccessState.objects.get(subscriber=customer)
    assert (state.state, state.reason) == ("blocked", "Порча оборудования")
    assert AuditEvent.objects.filter(action="dunning.block", actor=operator).count() == 1
    title = header(client.get(reverse("subscribers:card", args=[customer.pk])).content.decode())
    assert "Blocked by operator" in title
    response = client.post(
        reverse("dunning:unblock", args=[customer.pk]), {"reason": "Разобрались"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and response["HX-Redirect"].endswith("#panel-access")
    assert AccessState.objects.get(subscriber=customer).state == "active"


def test_a_block_without_a_reason_is_a_field_error_and_changes_nothing(customer, operator):
    response = client_of(operator).post(
        reverse("dunning:block", args=[customer.pk]), {"reason": "  "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    assert not AccessState.objects.filter(subscriber=customer).exists()


def test_blocking_twice_answers_the_actions_refusal(customer, operator):
    client = client_of(operator)
    client.post(reverse("dunning:block", args=[customer.pk]), {"reason": "Первый"})
    response = client.post(reverse("dunning:block", args=[customer.pk]), {"reason": "Второй"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "Access is already blocked." in response.content.decode()
    assert AccessTransition.objects.filter(subscriber=customer).count() == 1


def test_the_cashier_and_the_operator_may_not_terminate(customer, operator, make_staff):
    for user in (operator, make_staff(Role.CASHIER)):
        response = client_of(user).post(reverse("dunning:terminate", args=[customer.pk]), {"reason": "Долг"})
        assert response.status_code == 403
    cashier_block = client_of(make_staff(Role.CASHIER)).post(
        reverse("dunning:block", args=[customer.pk]), {"reason": "Долг"}
    )
    assert cashier_block.status_code == 403
    assert not AccessState.objects.filter(subscriber=customer).exists()


def test_the_admin_terminates_and_reinstates(customer, admin, mid_november):
    client = client_of(admin)
    client.post(reverse("dunning:terminate", args=[customer.pk]), {"reason": "Договор расторгнут"})
    assert AccessState.objects.get(subscriber=customer).state == "terminated"
    client.post(reverse("dunning:reinstate", args=[customer.pk]), {"reason": "Ошибка"})
    assert AccessState.objects.get(subscriber=customer).state == "active"


def test_another_branchs_subscriber_is_not_found(customer, make_staff, other_branch):
    outsider = make_staff(Role.OPERATOR, branches=[other_branch])
    response = client_of(outsider).post(reverse("dunning:block", args=[customer.pk]), {"reason": "Долг"})
    assert response.status_code == 404
    assert not AccessState.objects.filter(subscriber=customer).exists()


def test_the_card_exempts_and_revokes(customer, admin, operator):
    bring_to(customer, "restricted", admin)
    client = client_of(operator)
    with clock.travel_to(RESTRICTED_AT):
        bad = client.post(
            reverse("dunning:card_exemption_add", args=[customer.pk]),
            {"reason": "Школа", "expires_on": "2026-11-01"},
            HTTP_HX_REQUEST="true",
        )
        assert bad.status_code == 422 and "The end is before the start." in bad.content.decode()
        client.post(
            reverse("dunning:card_exemption_add", args=[customer.pk]), {"reason": "Школа", "expires_on": "2026-12-31"}
        )
        assert AccessState.objects.get(subscriber=customer).state == "warned"  # an exemption stops at warned
        exemption = customer.access_exemptions.get()
        client.post(reverse("dunning:card_exemption_revoke", args=[customer.pk, exemption.pk]))
    exemption.refresh_from_db()
    assert exemption.revoked_by == operator
    assert AccessState.objects.get(subscriber=customer).state == "restricted"


# --- the subscriber list -------------------------------------------------------------------------------------


@pytest.fixture
def crowd(make_subscriber, plan, admin, settings):
    """Five subscribers: two debtors (restricted), one blocked, two paid up."""
    settings.ABONENT_QUIET_HOURS = ""
    debtors = [paying_subscriber(make_subscriber, plan, admin, last_name=f"Должник{i}") for i in range(2)]
    paid = [paying_subscriber(make_subscriber, plan, admin, last_name=f"Плательщик{i}") for i in range(3)]
    from abonent.billing import actions as billing

    for p in paid:
        with clock.travel_to(dt.date(2026, 11, 2)):
            billing.do_post_payment(p, amount="5000.00", channel="test", external_id=f"big-{p.pk}")
    bring_to(debtors[0], "restricted", admin)  # the sweep restricts both debtors
    actions.do_block_access(paid[2], acting_user=admin, reason="Порча")
    return {"debtors": debtors, "paid": paid[:2], "blocked": paid[2]}


def listed(html: str) -> dict[str, str]:
    """Account → the Access cell's state, from the list page."""
    rows = re.findall(r'<td class="account-number"><a [^>]*>(\w+)</a></td>.*?</tr>', html, re.S)
    cells = re.findall(r'<td class="account-number"><a [^>]*>\w+</a></td>(.*?)</tr>', html, re.S)
    states = [(re.search(r"access-badge access-(\w+)", c) or [None, None])[1] for c in cells]
    return dict(zip(rows, states, strict=True))


def test_the_list_shows_the_access_column_and_filters_by_it(crowd, operator):
    client = client_of(operator)
    everyone = listed(client.get(reverse("subscribers:list")).content.decode())
    assert sorted(everyone.values()) == ["active", "active", "blocked", "restricted", "restricted"]
    restricted = listed(client.get(reverse("subscribers:list"), {"access": "restricted"}).content.decode())
    assert sorted(restricted) == sorted(s.account_number for s in crowd["debtors"])
    active = listed(client.get(reverse("subscribers:list"), {"access": "active"}).content.decode())
    assert sorted(active) == sorted(s.account_number for s in crowd["paid"])
    with_search = listed(
        client.get(reverse("subscribers:list"), {"access": "restricted", "q": "Должник1"}).content.decode()
    )
    assert list(with_search) == [crowd["debtors"][1].account_number]


def test_the_list_reads_the_column_in_a_constant_number_of_queries(
    crowd, operator, make_subscriber, plan, admin, django_assert_max_num_queries
):
    client = client_of(operator)
    client.get(reverse("subscribers:list"))  # sessions, caches
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("subscribers:list"))
    for i in range(6):
        customer = paying_subscriber(make_subscriber, plan, admin, last_name=f"Ещё{i}")
        actions.do_block_access(customer, acting_user=admin, reason="Порча")
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get(reverse("subscribers:list")).content.decode()
    assert list(listed(html).values()).count("blocked") == 7


def test_the_list_pages_on_with_the_filter(crowd, operator, settings):
    settings.ABONENT_SEARCH_PAGE_SIZE = 1
    client = client_of(operator)
    first = listed(client.get(reverse("subscribers:list"), {"access": "restricted"}).content.decode())
    second_page = client.get(reverse("subscribers:list"), {"access": "restricted", "page": 2}).content.decode()
    second = listed(second_page)
    assert len(first) == len(second) == 1 and set(first) != set(second)
    assert set(first) | set(second) == {s.account_number for s in crowd["debtors"]}


def test_an_unknown_access_filter_is_ignored_not_a_500(crowd, operator):
    response = client_of(operator).get(reverse("subscribers:list"), {"access": "nonsense"})
    # The list answers 422 with the ignored filter's error beside it (issue 17), and still lists.
    assert response.status_code == 422
    assert 'class="subscriber-link"' in response.content.decode()


# --- the queue -----------------------------------------------------------------------------------------------


def test_the_queue_totals_per_state_and_the_total_owed(crowd, operator):
    with clock.travel_to(LATER):
        html = client_of(operator).get(reverse("dunning:queue")).content.decode()
    found = re.findall(
        r'total-(\w+)"><div[^>]*>[^<]*</div><div[^>]*><span class="total-count">(\d+)</span> · '
        r'<span class="total-owed">([^<]*)</span>',
        html,
    )
    counts = {state: n for state, n, _owed in found}
    totals = {state: owed for state, _n, owed in found}
    assert counts == {"restricted": "2", "blocked": "1", "all": "3"}
    assert totals["restricted"] == totals["all"] == "1,200.00\xa0₽"
    assert html.count('class="queue-row"') == 3


def test_the_queue_filters_by_state_and_branch_and_respects_the_staff_branch(
    crowd, make_staff, other_branch, make_subscriber, plan, admin
):
    stranger = paying_subscriber(make_subscriber, plan, admin, branch_obj=other_branch, last_name="Чужой")
    actions.do_block_access(stranger, acting_user=admin, reason="Порча")
    local = make_staff(Role.OPERATOR, branches=[crowd["blocked"].branch])
    blocked = client_of(local).get(reverse("dunning:queue"), {"state": "blocked"}).content.decode()
    assert crowd["blocked"].account_number in blocked and stranger.account_number not in blocked
    assert blocked.count('class="queue-row"') == 1
    everywhere = client_of(admin).get(reverse("dunning:queue"), {"branch": other_branch.pk}).content.decode()
    assert everywhere.count('class="queue-row"') == 1 and stranger.account_number in everywhere


def test_the_queue_as_csv(crowd, operator):
    response = client_of(operator).get(reverse("dunning:queue_csv"), {"state": "restricted", "order": "since"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("Account;Subscriber;Branch;Access state")
    assert len(lines) == 3 and all(";Restricted;" in line and ";600.00;" in line for line in lines[1:])


def test_the_engineer_may_not_see_the_queue(make_staff):
    assert client_of(make_staff(Role.ENGINEER)).get(reverse("dunning:queue")).status_code == 403
    assert Client().get(reverse("dunning:queue")).status_code == 302  # to the login


def test_the_queue_owed_matches_the_model(crowd):
    assert sorted(AccessState.objects.filter(state="restricted").values_list("owed", flat=True)) == [OWED, OWED]
    assert Decimal("1200.00") == sum(s.owed for s in AccessState.objects.filter(state="restricted"))
