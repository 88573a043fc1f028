"""The installer's API: the day, the devices issued, a close retried with the same Idempotency-Key answered once,
another installer's job a 404, the warehouse's counts."""

from abonent.fieldwork import actions
from abonent.fieldwork.models import Job
from abonent.subscribers.models import Subscriber

from .conftest import TODAY, slot


def test_the_day_and_the_devices_issued(book, receive, storekeeper, installer, other_installer, api_as):
    late, early = book("15:00", "16:00"), book("09:00", "10:00")
    book("09:00", "10:00", who=other_installer)
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=early)
    api = api_as(installer)

    day = api.get(f"/api/v1/fieldwork/my-day?day={TODAY.isoformat()}").json()
    devices = api.get("/api/v1/fieldwork/my-devices").json()

    assert [(j["id"], j["starts_at"], j["contact_phone"]) for j in day] == [
        (early.pk, "09:00:00", "+79161234567"),
        (late.pk, "15:00:00", "+79161234567"),
    ]
    assert devices == [
        {
            "id": ont.pk,
            "serial_number": "ZTEG0001",
            "mac_address": None,
            "model": "ZTE F660",
            "kind": "ont",
            "job_id": early.pk,
        }
    ]


def test_a_close_retried_with_the_same_key_creates_the_subscriber_once(dispatcher, installer, branch, api_as):
    job = actions.do_create_job(
        installer=installer,
        slot=slot("12:00", "14:00"),
        prospect=actions.ProspectData(
            branch_id=branch.pk, last_name="Новикова", first_name="Ольга", phone="+79165554433", city="Тверь", house="7"
        ),
        acting_user=dispatcher,
    )
    api = api_as(installer)
    url = f"/api/v1/fieldwork/jobs/{job.pk}/close"

    without_key = api.post(url, {"result": "Connected"}, key=None)
    first = api.post(url, {"result": "Connected"}, key="close-1")
    retry = api.post(url, {"result": "Connected"}, key="close-1")

    assert without_key.status_code == 400
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json()
    subscriber = Subscriber.objects.get(last_name="Новикова")
    assert first.json()["subscriber_id"] == subscriber.pk
    assert first.json()["status"] == "done"


def test_another_installers_job_is_not_found_and_bad_serials_are_a_422(book, installer, other_installer, api_as):
    job = book()
    assert api_as(other_installer).post(f"/api/v1/fieldwork/jobs/{job.pk}/close", {}).status_code == 404
    assert api_as(installer).post(f"/api/v1/fieldwork/jobs/{'9' * 25}/close", {}).status_code in (404, 422)
    refused = api_as(installer).post(f"/api/v1/fieldwork/jobs/{job.pk}/close", {"serials": ["NOPE"]})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "serials"
    assert Job.objects.get().status == "scheduled"


def test_stock_counts_for_the_warehouse_only(receive, storekeeper, installer, dispatcher, api_as):
    receive("A1", "A2")
    counts = api_as(storekeeper).get("/api/v1/fieldwork/stock/counts").json()
    assert counts == [
        {
            "model_id": counts[0]["model_id"],
            "vendor": "ZTE",
            "name": "F660",
            "kind": "ont",
            "counts": {"received": 2, "issued": 0, "installed": 0, "returned": 0, "written_off": 0},
            "total": 2,
        }
    ]
    assert api_as(dispatcher).get("/api/v1/fieldwork/stock/counts").status_code == 403
