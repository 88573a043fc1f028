"""Bulk actions on the subscriber list (abonent/bulk): the preview's counts are what the action does; a double
submit does one run; another branch's subscribers are never touched; closed ones are skipped; a large set goes to
the worker; each change is audited; who may do what."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from abonent.billing import actions as billing
from abonent.billing.models import LedgerAccount, Subscription
from abonent.bulk import actions
from abonent.bulk.models import BulkAction, BulkActionItem
from abonent.bulk.tasks import run_bulk_action
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.notifications.bulk import expand_bulk
from abonent.notifications.models import BulkMessage, Message
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_close_subscriber
from abonent.subscribers.models import SubscriberGroup

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _now():
    with clock.travel_to(NOW):
        yield


@pytest.fixture
def group(db):
    return SubscriberGroup.objects.create(name="VIP")


@pytest.fixture
def people(make_subscriber, admin, group, other_branch):
    """Five in our branch (one already in the group, one closed, one without a phone), one in another branch."""
    made = {name: make_subscriber(last_name=name, phone=f"+7916555000{i}") for i, name in enumerate("ABCD")}
    made["nophone"] = make_subscriber(last_name="E", phone="")
    made["far"] = make_subscriber(last_name="F", phone="+79165550009", branch_obj=other_branch)
    made["B"].groups.add(group)
    do_close_subscriber(made["C"], reason="moved away", acting_user=admin)
    return made


def ids(*subscribers):
    return [str(s.pk) for s in subscribers]


def step(client, data, name):
    return client.post(reverse("bulk:subscribers"), {**data, "step": name})


def preview_then_confirm(client, data):
    """Preview, read the counts and the form key the page shows, confirm: (preview page, confirm response)."""
    page = step(client, data, "preview")
    html = page.content.decode()
    assert page.status_code == 200, html
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', html).group(1)
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1)
    return html, {**data, "form_key": key, "fingerprint": fingerprint}


def touched(html) -> int:
    return int(re.search(r'id="preview-touched">(\d+)<', html).group(1))


def skipped(html) -> dict:
    return {r: int(n) for r, n in re.findall(r'data-reason="(\w+)">[^<]*: <strong>(\d+)</strong>', html)}


def test_adding_the_ticked_to_a_group_previews_confirms_and_does_what_it_said(people, group, operator, client_of):
    client = client_of(operator)
    ticked = ids(people["A"], people["B"], people["C"], people["D"])
    chosen = client.post(reverse("bulk:subscribers"), {"ids": ticked, "kind": "group_add", "step": "choose"})
    assert chosen.status_code == 200 and "4 subscribers ticked on the list." in chosen.content.decode()
    data = {"ids": ticked, "kind": "group_add", "group": group.pk, "reason": "Бизнес-центр"}
    html, confirm = preview_then_confirm(client, data)
    assert touched(html) == 2 and skipped(html) == {"already_member": 1, "closed": 1}
    assert not BulkAction.objects.exists()  # the preview writes nothing

    response = step(client, confirm, "confirm")
    action = BulkAction.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("bulk:action", args=[action.pk])
    assert action.status == "done" and action.preview["touched"] == 2  # 4 ≤ 200: run in the request
    assert set(group.subscribers.values_list("pk", flat=True)) == {people[n].pk for n in "ABD"}
    assert not people["C"].groups.exists()  # closed: skipped
    outcomes = dict(BulkActionItem.objects.values_list("subscriber_id", "reason"))
    assert outcomes == {
        people["A"].pk: "",
        people["B"].pk: "already_member",
        people["C"].pk: "closed",
        people["D"].pk: "",
    }
    # Each change is audited on its subscriber, with the comment, and the action itself twice.
    changes = [e for e in AuditEvent.objects.filter(action="subscriber.updated") if group.pk in e.after["groups"]]
    assert sorted(e.subscriber_id for e in changes) == [people["A"].pk, people["D"].pk]
    assert {e.reason for e in changes} == {"Бизнес-центр"} and {e.actor for e in changes} == {operator}
    confirmed = AuditEvent.objects.get(action="bulk.action_confirmed")
    assert confirmed.after["subscribers"] == 4 and confirmed.after["ticked"] == [int(i) for i in ticked]
    finished = AuditEvent.objects.get(action="bulk.action_finished")
    assert finished.after["outcomes"] == {"done": 2, "skipped:already_member": 1, "skipped:closed": 1}

    page = client.get(response["Location"]).content.decode()
    assert 'id="result-done">2<' in page and 'id="result-skipped">2<' in page and "previewed: 2" in page


def test_a_double_submit_runs_once(people, group, operator, client_of):
    client = client_of(operator)
    data = {"ids": ids(people["A"], people["D"]), "kind": "group_add", "group": group.pk}
    _html, confirm = preview_then_confirm(client, data)
    first = step(client, confirm, "confirm")
    second = step(client, confirm, "confirm")
    assert first["Location"] == second["Location"]
    assert BulkAction.objects.count() == 1 and BulkActionItem.objects.count() == 2
    assert AuditEvent.objects.filter(action="subscriber.updated", subscriber_id=people["A"].pk).count() == 1
    assert "This form was sent already" in client.get(second["Location"]).content.decode()


def test_a_branch_limited_operator_never_touches_another_branch(people, group, make_staff, client_of, branch):
    limited = make_staff(Role.OPERATOR, branches=[branch])
    client = client_of(limited)
    # Every subscriber the list matches, and a forged id of another branch's subscriber among the ticked.
    html, confirm = preview_then_confirm(client, {"scope": "all", "query": "", "kind": "group_add", "group": group.pk})
    assert touched(html) == 3 and skipped(html) == {"already_member": 1, "closed": 1}  # A, D, nophone; not F
    step(client, confirm, "confirm")
    forged = {"ids": ids(people["far"], people["A"]), "kind": "group_remove", "group": group.pk}
    html, confirm = preview_then_confirm(client, forged)
    assert touched(html) == 1 and "1 subscriber ticked on the list." in html
    step(client, confirm, "confirm")
    assert not people["far"].groups.exists()
    assert not BulkActionItem.objects.filter(subscriber=people["far"]).exists()


def test_all_matching_the_filter_goes_to_the_worker_when_large(people, group, operator, client_of, monkeypatch):
    monkeypatch.setattr(actions, "INLINE_LIMIT", 1)
    client = client_of(operator)
    data = {"scope": "all", "query": "status=active&page=3", "kind": "group_add", "group": group.pk}
    html, confirm = preview_then_confirm(client, data)
    assert touched(html) == 4 and skipped(html) == {"already_member": 1}  # active only: C is closed
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        step(client, confirm, "confirm")
    action = BulkAction.objects.get()
    assert action.status == "queued" and action.query == "status=active"
    assert not group.subscribers.filter(pk=people["A"].pk).exists()  # not yet: the worker's
    [job] = DBTaskResult.objects.filter(task_path__endswith="run_bulk_action")
    assert job.args_kwargs["kwargs"] == {"action_id": action.pk}
    page = client.get(reverse("bulk:action", args=[action.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in page and 'id="result-pending">5<' in page

    result = run_bulk_action.call(action_id=action.pk)
    assert result["status"] == "done" and result["done"] == 4
    assert group.subscribers.count() == 5
    assert run_bulk_action.call(action_id=action.pk)["done"] == 4  # a second run does nothing more


def test_changing_the_plan_at_the_period_end_schedules_it_and_charges_nothing(
    people, make_plan, admin, operator, client_of
):
    home = make_plan("home", "650.00", name="Домашний")
    game = make_plan("game", "900.00", name="Игровой")
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)):
        on_home = billing.do_activate_subscription(people["A"], plan=home, acting_user=admin)
        billing.do_activate_subscription(people["B"], plan=game, acting_user=admin)
        frozen = billing.do_activate_subscription(people["D"], plan=home, acting_user=admin)
    Subscription.objects.filter(pk=frozen.pk).update(status="frozen")
    balance_before = LedgerAccount.objects.get(subscriber=people["A"]).balance
    client = client_of(operator)
    data = {"ids": ids(people["A"], people["B"], people["C"], people["D"], people["nophone"]), "kind": "plan_change"}
    data["plan"] = game.pk
    html, confirm = preview_then_confirm(client, data)
    assert touched(html) == 1
    assert skipped(html) == {"same_plan": 1, "closed": 1, "not_active": 1, "no_subscription": 1}
    step(client, confirm, "confirm")
    on_home.refresh_from_db()
    assert (on_home.plan, on_home.pending_plan, on_home.pending_plan_from) == (home, game, dt.date(2027, 1, 1))
    assert LedgerAccount.objects.get(subscriber=people["A"]).balance == balance_before == Decimal("-650.00")
    assert AuditEvent.objects.filter(action="billing.plan_change_scheduled", subscriber_id=people["A"].pk).count() == 1
    assert BulkAction.objects.get().preview["touched"] == BulkActionItem.objects.filter(outcome="done").count() == 1


def test_sending_a_message_uses_the_bulk_message_machinery(people, operator, client_of):
    client = client_of(operator)
    data = {
        "ids": ids(people["A"], people["B"], people["C"], people["nophone"], people["far"]),
        "kind": "message",
        "channel": "sms",
        "body": "{name}, завтра с 2:00 до 4:00 работы на сети.",
        "per_minute": "600",
    }
    html, confirm = preview_then_confirm(client, data)
    assert touched(html) == 3 and skipped(html) == {"closed": 1, "no_address": 1}
    step(client, confirm, "confirm")
    bulk = BulkMessage.objects.get()
    assert (bulk.audience, bulk.audience_id, bulk.recipients, bulk.created_by) == (
        "bulk",
        BulkAction.objects.get().pk,
        3,
        operator,
    )
    expand_bulk(bulk.pk)
    assert sorted(Message.objects.filter(bulk=bulk).values_list("subscriber_id", flat=True)) == sorted(
        [people["A"].pk, people["B"].pk, people["far"].pk]
    )
    assert AuditEvent.objects.filter(action="notifications.bulk_created").count() == 1
    # A bad placeholder is a field error of the preview, and nothing is written.
    bad = step(client, {**data, "body": "{balance} ₽"}, "preview")
    assert bad.status_code == 422 and "{balance}" in bad.content.decode()


def test_changed_parameters_are_previewed_again_and_nobody_to_change_is_refused(people, group, operator, client_of):
    client = client_of(operator)
    data = {"ids": ids(people["A"]), "kind": "group_add", "group": group.pk}
    _html, confirm = preview_then_confirm(client, data)
    other = SubscriberGroup.objects.create(name="Другая")
    again = step(client, {**confirm, "group": other.pk}, "confirm")
    assert again.status_code == 200 and "check the new preview" in again.content.decode()
    assert not BulkAction.objects.exists()
    nobody = step(client, {"ids": ids(people["B"]), "kind": "group_add", "group": group.pk}, "preview")
    assert nobody.status_code == 422 and "would change nobody" in nobody.content.decode()
    missing = step(client, {"ids": ids(people["A"]), "kind": "group_add"}, "preview")
    assert missing.status_code == 422 and "Choose one." in missing.content.decode()


def test_who_may_do_bulk_actions(people, group, make_staff, client_of):
    data = {"ids": ids(people["A"]), "kind": "group_add", "group": group.pk, "step": "preview"}
    for role in (Role.SUPPORT, Role.CASHIER, Role.ENGINEER):
        assert client_of(make_staff(role)).post(reverse("bulk:subscribers"), data).status_code == 403
    assert not group.subscribers.filter(pk=people["A"].pk).exists()
