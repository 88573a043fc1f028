"""Attack review of the worker-computed reports: results kept in the worker's language, unbounded computations, an
export before the first result, the forecast's freezes under the wrong plan, the debtors chart ignoring the filters."""

import csv
import datetime as dt
import io
from decimal import Decimal

import polib
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from abonent.billing import actions
from abonent.catalog.models import FreezePolicy
from abonent.core import clock
from abonent.reports.pages import ReportFilterForm, get_report
from abonent.reports.results import do_compute_report

D = Decimal

# The Russian of the labels a worker-computed result shows, compiled into a catalogue of the test's own: the
# project's catalogue may not have them yet (translations are compiled by the coordinator), and the defect is only
# visible when the worker's language differs from the reader's.
RU_LABELS = {
    "Upgrade": "Повышение",
    "Downgrade": "Понижение",
    "Same price": "Та же цена",
    "Accrued": "Начислено",
    "Forecast": "Прогноз",
}


def client_for(user, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def compute(user, slug: str, **params) -> list[dict]:
    form = ReportFilterForm(params, user=user, report=get_report(slug))
    assert form.is_valid(), form.errors
    return do_compute_report(slug, form.query().as_params()).rows


# --- the forecast's freezes -------------------------------------------------------------------------------------


@pytest.fixture
def downgrade_and_freeze(make_plan, make_subscriber, admin):
    """Харитонов on Игровой (900 ₽) asks on 25 November for Домашний (500 ₽), which takes effect on 1 December (a
    downgrade waits for the next period), and freezes from that day to 11 December (10 days of December)."""
    policy = FreezePolicy.objects.create(name="free", min_days=1, max_days=60)
    home = make_plan("home", "500.00", name="Домашний", freeze_policy=policy)
    gamer = make_plan("gamer", "900.00", name="Игровой", freeze_policy=policy)
    person = make_subscriber(last_name="Харитонов", phone="+79160000041")
    with clock.travel_to(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(person, plan=gamer, acting_user=admin)
    with clock.travel_to(dt.date(2026, 11, 25)):
        actions.do_change_plan(subscription, plan=home, acting_user=admin)
        actions.do_freeze_subscription(subscription, days=16, acting_user=admin)
    subscription.refresh_from_db()
    assert subscription.pending_plan_id == home.pk and subscription.pending_plan_from == dt.date(2026, 12, 1)
    return {"home": home, "gamer": gamer}


@pytest.mark.django_db
def test_forecast_takes_the_freeze_off_the_plan_of_next_month(downgrade_and_freeze, admin):
    plans = downgrade_and_freeze
    with clock.travel_to(dt.date(2026, 11, 25)):
        whole = compute(admin, "forecast", period="last_month")[-1]
        home = compute(admin, "forecast", period="last_month", plan=str(plans["home"].pk))[-1]
        gamer = compute(admin, "forecast", period="last_month", plan=str(plans["gamer"].pk))[-1]
    # December on Домашний: 500 − 500 × 10 / 31 = 338.71 (not 500 − 900 × 10 / 31 = 209.68).
    assert whole["amount"] == {"n": "338.71"} and whole["subscriptions"] == 1
    assert home["amount"] == {"n": "338.71"} and home["subscriptions"] == 1
    # Nobody will be on Игровой in December: nothing, not −290.32.
    assert gamer["amount"] == {"n": "0.00"} and gamer["subscriptions"] == 0


# --- results kept in the worker's language --------------------------------------------------------------------


@pytest.fixture
def ru_labels(tmp_path, settings):
    """A compiled ``ru`` catalogue holding ``RU_LABELS``, ahead of the project's (LOCALE_PATHS' first wins)."""
    catalogue = polib.POFile()
    catalogue.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "ru"}
    for msgid, msgstr in RU_LABELS.items():
        catalogue.append(polib.POEntry(msgid=msgid, msgstr=msgstr))
    where = tmp_path / "ru" / "LC_MESSAGES"
    where.mkdir(parents=True)
    catalogue.save_as_mofile(str(where / "django.mo"))
    settings.LOCALE_PATHS = [tmp_path, *settings.LOCALE_PATHS]  # resets Django's translation cache
    with translation.override("ru"):
        assert translation.gettext("Upgrade") == "Повышение"


def export(client, slug: str, **params) -> list[list[str]]:
    response = client.get(reverse("reports:report_export", args=[slug]), {"format": "csv", **params})
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


@pytest.mark.django_db
def test_a_result_computed_by_a_russian_worker_reads_in_english_and_russian(
    ru_labels, make_plan, make_subscriber, admin
):
    home = make_plan("home", "500.00", name="Домашний")
    gamer = make_plan("gamer", "900.00", name="Игровой")
    person = make_subscriber(last_name="Харитонов", phone="+79160000042")
    with clock.travel_to(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(person, plan=home, acting_user=admin)
    with clock.travel_to(dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(subscription, plan=gamer, acting_user=admin)
    november = {"period": "custom", "start": "2026-11-01", "end": "2026-11-30"}
    with clock.travel_to(dt.date(2026, 11, 25)), translation.override("ru"):  # the worker runs in Russian
        compute(admin, "plan-migrations", **november)
        compute(admin, "forecast", period="last_month")

    with clock.travel_to(dt.date(2026, 11, 25)):
        english, russian = client_for(admin, "en"), client_for(admin, "ru")
        assert export(english, "plan-migrations", **november)[1][3] == "Upgrade"
        assert export(russian, "plan-migrations", **november)[1][3] == "Повышение"
        # October and November accrued, December forecast.
        figures = [r[1] for r in export(english, "forecast", period="last_month")[1:]]
        assert figures == ["Accrued", "Accrued", "Forecast"]
        figures = [r[1] for r in export(russian, "forecast", period="last_month")[1:]]
        assert figures == ["Начислено", "Начислено", "Прогноз"]
        page = english.get(reverse("reports:report", args=["plan-migrations"]), november).content.decode()
        assert "Upgrade" in page and "Повышение" not in page


# --- bounded computations -----------------------------------------------------------------------------------------


def churn_filters(month: int) -> dict:
    return {"period": "custom", "start": f"2026-{month:02d}-01", "end": f"2026-{month:02d}-28"}


@pytest.mark.django_db
def test_each_new_filter_queues_a_computation_only_up_to_the_limit(
    admin, make_staff, django_capture_on_commit_callbacks
):
    from abonent.reports import results
    from abonent.reports.models import ReportResult

    client, url = client_for(admin), reverse("reports:report", args=["churn"])
    with django_capture_on_commit_callbacks() as queued:
        for month in range(1, results.PENDING_PER_USER + 1):
            assert 'id="report-pending"' in client.get(url, churn_filters(month)).content.decode()
        # The same filters again: the one computation serves them.
        client.get(url, churn_filters(1))
    assert len(queued) == results.PENDING_PER_USER
    assert ReportResult.objects.count() == results.PENDING_PER_USER

    with django_capture_on_commit_callbacks() as queued:
        html = client.get(url, churn_filters(12)).content.decode()
    assert 'id="report-refused"' in html and 'id="report-pending"' not in html
    assert queued == [] and ReportResult.objects.count() == results.PENDING_PER_USER  # nothing kept, nothing queued

    # Another user has a limit of their own; the whole worker has one too.
    other = client_for(make_staff(username="second"))
    with django_capture_on_commit_callbacks() as queued:
        assert 'id="report-pending"' in other.get(url, churn_filters(12)).content.decode()
    assert len(queued) == 1
    results.PENDING_TOTAL, limit = results.PENDING_PER_USER + 1, results.PENDING_TOTAL
    try:
        assert 'id="report-refused"' in other.get(url, churn_filters(11)).content.decode()
    finally:
        results.PENDING_TOTAL = limit

    # Once the worker has computed them, the user may ask again.
    for month in range(1, results.PENDING_PER_USER + 1):
        compute(admin, "churn", **churn_filters(month))
    with django_capture_on_commit_callbacks() as queued:
        assert 'id="report-pending"' in client.get(url, churn_filters(10)).content.decode()
    assert len(queued) == 1


@pytest.mark.django_db
def test_a_task_queued_twice_for_one_request_computes_once(admin):
    from abonent.reports.models import ReportResult

    client_for(admin).get(reverse("reports:report", args=["churn"]), churn_filters(3))
    first = compute(admin, "churn", **churn_filters(3))
    computed_at = ReportResult.objects.get().computed_at
    with clock.travel_to(clock.now() + dt.timedelta(minutes=1)):
        assert compute(admin, "churn", **churn_filters(3)) == first
    assert ReportResult.objects.get().computed_at == computed_at


@pytest.mark.django_db
def test_old_results_are_pruned(admin):
    from abonent.reports.models import ReportResult
    from abonent.reports.results import do_prune_report_results

    now = clock.now()
    compute(admin, "churn", **churn_filters(1))
    ReportResult.objects.create(slug="churn", key="asked-and-lost", requested_at=now - dt.timedelta(days=2))
    ReportResult.objects.create(slug="churn", key="asked-lately", requested_at=now - dt.timedelta(hours=1))
    old = ReportResult.objects.create(slug="churn", key="old", computed_at=now - dt.timedelta(days=8))
    assert do_prune_report_results(now) == 2
    remaining = set(ReportResult.objects.values_list("key", flat=True))
    assert len(remaining) == 2 and "asked-lately" in remaining and not remaining & {"asked-and-lost", "old"}
    assert not ReportResult.objects.filter(pk=old.pk).exists()


# --- an export before the first result ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_export_before_the_first_result_says_so_and_is_not_an_empty_file(admin):
    client = client_for(admin)
    params = {**churn_filters(3), "format": "csv"}
    response = client.get(reverse("reports:report_export", args=["churn"]), params)
    assert response.status_code == 409 and response["Retry-After"] == "60"
    html = response.content.decode()
    assert 'id="report-not-computed"' in html and "being computed" in html
    assert reverse("reports:report", args=["churn"]) + "?period=custom" in html
    compute(admin, "churn", **churn_filters(3))
    response = client.get(reverse("reports:report_export", args=["churn"]), params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


# --- the debtors chart ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_debtors_chart_sums_the_debtors_the_filters_pick(make_plan, make_subscriber, admin, other_branch):
    """Сидоров owes 650 ₽ here, Кузнецов 500 ₽ in the other branch: with the other branch chosen, the chart is his
    debt alone, as the table is."""
    home = make_plan("home", "500.00", name="Домашний")
    internet_100 = make_plan("internet-100", "650.00", name="Интернет-100")
    here = make_subscriber(last_name="Сидоров", phone="+79160000051")
    far = make_subscriber(last_name="Кузнецов", phone="+79160000052", branch_obj=other_branch)
    with clock.travel_to(dt.date(2026, 11, 1)):
        actions.do_activate_subscription(here, plan=internet_100, acting_user=admin)
        actions.do_activate_subscription(far, plan=home, acting_user=admin)
    client = client_for(admin)
    with clock.travel_to(dt.date(2026, 11, 10)):
        everyone = client.get(reverse("reports:debtors")).content.decode()
        chosen = client.get(reverse("reports:debtors"), {"branch": str(other_branch.pk)}).content.decode()
        large = client.get(reverse("reports:debtors"), {"min_debt": "600"}).content.decode()

    def total(html: str) -> tuple[str, str]:
        footer = html[html.index('data-bucket="total"') :]
        count = footer[footer.index("data-count>") + len("data-count>") :].split("<", 1)[0]
        debt = footer[footer.index("data-debt>") + len("data-debt>") :].split("<", 1)[0]
        return count, debt.replace("\xa0", " ")

    assert total(everyone)[0] == "2" and total(everyone)[1].startswith("1,150.00")
    assert chosen.count('data-subscriber="') == 1
    assert total(chosen)[0] == "1" and total(chosen)[1].startswith("500.00")
    assert total(large)[0] == "1" and total(large)[1].startswith("650.00")
    assert "of the debtors matching the filters" in chosen
