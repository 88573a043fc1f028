"""The usage page and its API: traffic per day and per month equal to network's ``UsageDay`` rows, time online per
day from the sessions (cut at the operator's midnight, two devices at once counted once), the sessions a page at
a time; bad months and another subscriber's ids refused, never a 500."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from abonent.core import clock
from abonent.network.models import Session, UsageDay

from .conftest import TODAY, api_of, signed_in
from .usage_records import connect, make_nas

pytestmark = pytest.mark.django_db
MSK = dt.timezone(dt.timedelta(hours=3))


def msk(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=MSK)


@pytest.fixture
def nas(admin):
    return make_nas(admin)


@pytest.fixture
def traffic(subscriber, stranger, nas):
    """November for our subscriber: three days of sessions, one across midnight; the stranger online too."""
    connect(nas, subscriber, start=msk(3, 10), seconds=2 * 3600, download=3_000_000, upload=300_000, stop=True)
    connect(nas, subscriber, start=msk(3, 22), seconds=4 * 3600, download=8_000_000, upload=800_000, stop=True)
    connect(nas, subscriber, start=msk(18, 9), seconds=3600, download=5_000, upload=500, stop=True)
    connect(nas, subscriber, start=msk(10, 9, month=10), seconds=600, download=70_000, upload=7_000, stop=True)
    connect(nas, stranger, start=msk(3, 12), seconds=3600, download=999_999_999, upload=1, stop=True)


def usage_rows(subscriber, start: dt.date, end: dt.date) -> dict[dt.date, tuple[int, int]]:
    rows = UsageDay.objects.filter(subscriber=subscriber, day__gte=start, day__lt=end)
    return {r.day: (r.output_octets, r.input_octets) for r in rows}


def test_traffic_per_day_is_usage_day_exactly_and_time_online_is_cut_at_midnight(subscriber, traffic):
    with clock.travel_to(TODAY):
        response = api_of(subscriber).get("/api/v1/my/usage", {"month": "2026-11"})
    assert response.status_code == 200
    data = response.json()
    # Every day of November up to today (the 20th)
    assert [d["day"] for d in data["days"]] == [f"2026-11-{n:02d}" for n in range(1, 21)]
    by_day = {dt.date.fromisoformat(d["day"]): d for d in data["days"]}
    rows = usage_rows(subscriber, dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    for day, (download, upload) in rows.items():
        assert (by_day[day]["download_bytes"], by_day[day]["upload_bytes"]) == (download, upload)
    assert sum(d["download_bytes"] for d in data["days"]) == data["download_bytes"] == sum(d for d, _u in rows.values())
    assert data["upload_bytes"] == sum(u for _d, u in rows.values())
    # 10:00–12:00 and 22:00–24:00 on the 3rd, 00:00–02:00 on the 4th, 09:00–10:00 on the 18th
    online = {d["day"]: d["online_seconds"] for d in data["days"] if d["online_seconds"]}
    assert online == {"2026-11-03": 4 * 3600, "2026-11-04": 2 * 3600, "2026-11-18": 3600}
    assert data["online_seconds"] == 7 * 3600


def test_the_page_shows_the_same_figures_in_its_table_and_chart_data(subscriber, traffic):
    with clock.travel_to(TODAY):
        response = signed_in(subscriber).get("/my/usage/?month=2026-11")
    assert response.status_code == 200
    html = response.content.decode()
    rows = usage_rows(subscriber, dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    chart = json.loads(
        re.search(r'<script id="usage-chart-data" type="application/json">(.*?)</script>', html, re.S)[1]
    )
    assert len(chart["days"]["x"]) == 20
    assert sum(chart["days"]["download"]) == sum(d for d, _u in rows.values())
    assert sum(chart["days"]["upload"]) == sum(u for _d, u in rows.values())
    for day, (download, upload) in rows.items():
        cells = re.search(rf'<tr data-day="{day:%Y-%m-%d}">(.*?)</tr>', html, re.S)[1]
        assert re.findall(r"data-bytes=\"(\d+)\"", cells) == [str(download), str(upload)], cells
    assert '<tr data-day="2026-11-03">' in html and "4:00" in html
    # Drawn by the static script, nothing inline
    assert "/static/portal/usage.js" in html and "/static/vendor/uplot-1.6.32/uPlot.iife.min.js" in html
    assert not re.search(r"<script(?![^>]*(?:src=|application/json))", html)
    assert not re.search(r"<[^>]+\son[a-z]+=", html)


def test_the_last_twelve_months_sum_their_days(subscriber, traffic, nas):
    # A year and a month ago: not among the twelve
    connect(nas, subscriber, start=msk(15, 9, month=10).replace(year=2025), seconds=60, download=1, stop=True)
    with clock.travel_to(TODAY):
        data = api_of(subscriber).get("/api/v1/my/usage/months").json()
    months = [m["month"] for m in data["months"]]
    assert months == [f"2025-{n:02d}" for n in range(12, 13)] + [f"2026-{n:02d}" for n in range(1, 12)]
    totals = {m["month"]: (m["download_bytes"], m["upload_bytes"]) for m in data["months"]}
    november = usage_rows(subscriber, dt.date(2026, 11, 1), dt.date(2026, 12, 1)).values()
    october = usage_rows(subscriber, dt.date(2026, 10, 1), dt.date(2026, 11, 1)).values()
    assert totals["2026-11"] == (sum(d for d, _ in november), sum(u for _, u in november))
    assert totals["2026-10"] == (sum(d for d, _ in october), sum(u for _, u in october)) == (70_000, 7_000)
    assert totals["2026-01"] == (0, 0)


def test_two_devices_online_at_once_count_once(subscriber, nas):
    connect(nas, subscriber, start=msk(5, 10), seconds=3 * 3600, stop=True)
    connect(nas, subscriber, start=msk(5, 11), seconds=3 * 3600, stop=True, ip="10.0.0.6")
    with clock.travel_to(TODAY):
        data = api_of(subscriber).get("/api/v1/my/usage").json()
    assert {d["day"]: d["online_seconds"] for d in data["days"] if d["online_seconds"]} == {"2026-11-05": 4 * 3600}


def test_a_session_still_open_counts_up_to_now(subscriber, nas):
    connect(nas, subscriber, start=msk(19, 23), seconds=60)
    with clock.travel_to(msk(20, 1, 30)):
        data = api_of(subscriber).get("/api/v1/my/usage").json()
    assert {d["day"]: d["online_seconds"] for d in data["days"] if d["online_seconds"]} == {
        "2026-11-19": 3600,
        "2026-11-20": 5400,
    }


def test_a_strangers_traffic_is_never_counted(subscriber, stranger, nas):
    connect(nas, stranger, start=msk(3, 12), seconds=3600, download=123_456, upload=654, stop=True)
    with clock.travel_to(TODAY):
        data = api_of(subscriber).get("/api/v1/my/usage").json()
        months = api_of(subscriber).get("/api/v1/my/usage/months").json()
    assert (data["download_bytes"], data["upload_bytes"], data["online_seconds"]) == (0, 0, 0)
    assert all(m["download_bytes"] == 0 for m in months["months"])


@pytest.mark.parametrize(
    ("month", "code"),
    [
        ("2026-13", "month_invalid"),
        ("2026-00", "month_invalid"),
        ("november", "month_invalid"),
        ("2026-1", "month_invalid"),
        ("２０２６-１１", "month_invalid"),
        ("1999-12", "month_too_early"),
        ("0000-01", "month_too_early"),
        ("2026-12", "month_in_future"),
        ("9999-12", "month_in_future"),
    ],
)
def test_a_month_that_is_not_one_is_refused_with_its_code(subscriber, month, code):
    with clock.travel_to(TODAY):
        api = api_of(subscriber).get("/api/v1/my/usage", {"month": month})
        page = signed_in(subscriber).get("/my/usage/", {"month": month})
    assert api.status_code == 422
    assert [(f["field"], f["code"]) for f in api.json()["error"]["fields"]] == [("month", code)]
    # The page says so and shows this month instead
    assert page.status_code == 400
    html = page.content.decode()
    assert 'data-testid="usage-error"' in html and "Showing this month." in html
    assert "November 2026" in html


def test_an_absurdly_long_month_is_a_422_not_a_500(subscriber):
    with clock.travel_to(TODAY):
        api = api_of(subscriber).get("/api/v1/my/usage", {"month": "2026-11" * 1000})
        page = signed_in(subscriber).get("/my/usage/", {"month": "2026-11" * 1000})
    assert api.status_code == 422
    assert page.status_code == 400


def test_sessions_come_a_page_at_a_time_newest_first(subscriber, stranger, nas):
    for n in range(25):
        connect(nas, subscriber, start=msk(1, 0) + dt.timedelta(hours=n), seconds=600, stop=True, cause="Idle-Timeout")
    connect(nas, stranger, start=msk(2, 5), seconds=600, stop=True, ip="10.9.9.9")
    ours = list(Session.objects.filter(subscriber=subscriber).order_by("-started_at").values_list("pk", flat=True))
    api = api_of(subscriber)
    with clock.travel_to(TODAY):
        first = api.get("/api/v1/my/usage/sessions").json()
        second = api.get("/api/v1/my/usage/sessions", {"before": first["next_before"]}).json()
    assert [s["id"] for s in first["items"]] == ours[:20]
    assert first["next_before"] == ours[19]
    assert [s["id"] for s in second["items"]] == ours[20:]
    assert second["next_before"] is None
    item = first["items"][0]
    assert item | {"id": 0} == {
        "id": 0,
        "started_at": "2026-11-01T21:00:00Z",
        "stopped_at": "2026-11-01T21:10:00Z",
        "online": False,
        "duration_seconds": 600,
        "ip_address": "10.0.0.5",
        "mac": "AA:BB:CC:00:11:22",
        "download_bytes": 0,
        "upload_bytes": 0,
        "end_reason": "Idle-Timeout",
        "end_reason_label": "idle timeout",
    }
    # The page: the newest 20, then the link to the older ones
    browser = signed_in(subscriber)
    with clock.travel_to(TODAY):
        html = browser.get("/my/usage/").content.decode()
        assert [int(i) for i in re.findall(r'data-session="(\d+)"', html)] == ours[:20]
        older = re.search(r'href="([^"]+)" data-testid="usage-older"', html)[1].replace("&amp;", "&")
        html = browser.get("/my/usage/" + older).content.decode()
    assert [int(i) for i in re.findall(r'data-session="(\d+)"', html)] == ours[20:]
    assert 'data-testid="usage-older"' not in html
    assert "10.9.9.9" not in html


def test_another_subscribers_session_as_the_cursor_is_a_404(subscriber, stranger, nas):
    connect(nas, stranger, start=msk(2, 5), seconds=600, stop=True, ip="10.9.9.9")
    theirs = Session.objects.get(subscriber=stranger).pk
    with clock.travel_to(TODAY):
        api = api_of(subscriber).get("/api/v1/my/usage/sessions", {"before": theirs})
        page = signed_in(subscriber).get("/my/usage/", {"before": theirs})
        missing = api_of(subscriber).get("/api/v1/my/usage/sessions", {"before": theirs + 1000})
    assert (api.status_code, page.status_code, missing.status_code) == (404, 404, 404)
    assert api.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("before", ["abc", "-1", "0", "99999999999999999999999", "1.5"])
def test_a_cursor_that_is_not_an_id_is_refused(subscriber, before):
    with clock.travel_to(TODAY):
        api = api_of(subscriber).get("/api/v1/my/usage/sessions", {"before": before})
        page = signed_in(subscriber).get("/my/usage/", {"before": before})
    assert api.status_code == 422
    assert page.status_code == 404


def test_signed_out_the_usage_page_sends_to_login_and_the_api_is_401(db):
    from django.test import Client

    assert Client().get("/my/usage/").status_code == 302
    assert Client().get("/api/v1/my/usage").status_code == 401
