import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from abonent.core import audit, clock, events
from abonent.core.models import AuditEvent, Branch


def test_travel_to_moves_now_and_today_in_the_operator_time_zone():
    # 22:30 UTC on 31 December is already 1 January in Moscow (UTC+3).
    with clock.travel_to(dt.datetime(2026, 12, 31, 22, 30, tzinfo=dt.UTC)):
        assert clock.now() == dt.datetime(2026, 12, 31, 22, 30, tzinfo=dt.UTC)
        assert clock.today() == dt.date(2027, 1, 1)
    assert abs(clock.now() - timezone.now()) < dt.timedelta(seconds=5)


def test_travel_to_a_date_means_local_midnight():
    with clock.travel_to(dt.date(2026, 2, 28)):
        assert clock.today() == dt.date(2026, 2, 28)
        assert timezone.localtime(clock.now()).time() == dt.time(0, 0)


@pytest.mark.django_db(transaction=True)
def test_event_handlers_run_after_commit_and_never_after_rollback():
    seen = []

    @events.on("test.happened")
    def handler(event, **payload):
        seen.append((event, payload))

    with transaction.atomic():
        events.emit("test.happened", n=1)
        assert seen == []  # not before the commit
    assert seen == [("test.happened", {"n": 1})]

    with pytest.raises(RuntimeError), transaction.atomic():
        events.emit("test.happened", n=2)
        raise RuntimeError("roll back")
    assert seen == [("test.happened", {"n": 1})]


@pytest.mark.django_db(transaction=True)
def test_a_failing_handler_does_not_stop_the_others():
    seen = []

    @events.on("test.other")
    def broken(event, **payload):
        raise ValueError("boom")

    @events.on("test.other")
    def working(event, **payload):
        seen.append(payload)

    with transaction.atomic():
        events.emit("test.other", x=1)
    assert seen == [{"x": 1}]


def test_audit_diff_keeps_only_changed_fields():
    before = {"a": 1, "b": "x", "c": None}
    after = {"a": 1, "b": "y", "c": "z"}
    assert audit.diff(before, after) == ({"b": "x", "c": None}, {"b": "y", "c": "z"})


def test_audit_record_stores_actor_label_and_json_safe_values(db, admin):
    branch = Branch.objects.create(code="x", name="X")
    event = audit.record(actor=admin, action="test.done", obj=branch, after={"when": dt.date(2026, 1, 2)}, reason="why")
    event.refresh_from_db()
    assert (event.actor_id, event.actor_label, event.action) == (admin.pk, "admin", "test.done")
    assert (event.object_type, event.object_id, event.reason) == ("core.branch", str(branch.pk), "why")
    assert event.after == {"when": "2026-01-02"}


def test_audit_without_a_user_names_the_process(db):
    branch = Branch.objects.create(code="y", name="Y")
    event = audit.record(actor=None, action="test.system", obj=branch, actor_label="billing-run")
    assert event.actor is None and event.actor_label == "billing-run"
    assert AuditEvent.objects.filter(action="test.system").count() == 1


def test_password_hashes_and_token_hashes_never_reach_the_audit_log(admin):
    assert "password" not in audit.snapshot(admin)
    from abonent.staff.actions import do_create_api_token

    token, _plain = do_create_api_token(user=admin, name="x")
    assert "token_hash" not in audit.snapshot(token)
