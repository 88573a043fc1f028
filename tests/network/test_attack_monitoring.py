"""Attack review of network monitoring (h-dash): the sessions page, Disconnect/CoA, the NAS card, pools, the
sampler and traffic by NAS and plan.

Tests marked ``# FAILS`` show a defect on the reviewed code; the others are defences that hold."""

import csv
import datetime as dt
import io

import pytest
from django.test import Client

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import START, STOP, AcctRecord, write_batch
from abonent.network.models import (
    CoaError,
    CoaReason,
    CoaRequest,
    CoaStatus,
    IpPool,
    LoginKind,
    Nas,
    NasSample,
    PoolUsage,
    Session,
    SessionStatus,
    UsageDay,
)
from abonent.network.monitoring.health import pool_fill
from abonent.network.monitoring.models import pool_size
from abonent.network.monitoring.sampler import take_samples
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
TODAY = clock.today()
DAY = dt.timedelta(days=1)


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def start(nas, subscriber, *, unique, username, ip=None, started=None) -> Session:
    write_batch(
        [
            AcctRecord(
                status=START,
                nas_id=nas.pk,
                event_time=started or clock.now(),
                unique_id=unique,
                acct_session_id=f"s-{unique}",
                username=username,
                subscriber_id=subscriber.pk if subscriber else None,
                framed_ip=ip,
            )
        ]
    )
    return Session.objects.get(nas=nas, unique_id=unique)


@pytest.fixture
def two_branches(customer, make_subscriber, make_nas, admin, other_branch):
    """Иванов (Тверь) online on nas "tver-nas"; Клинов (Клин) online on nas "klin-nas"."""
    klinov = make_subscriber(last_name="Клинов", phone="+79160000071", branch_obj=other_branch)
    network.do_create_login(klinov, acting_user=admin, kind=LoginKind.PPPOE, username="klinov", password="pw-pw-pw-9")
    tver_nas, klin_nas = make_nas(name="tver-nas"), make_nas(name="klin-nas", ip_address="10.9.9.9")
    return {
        "ivanov": start(tver_nas, customer, unique="t1", username="ivanov", ip="100.64.1.1"),
        "klinov": start(klin_nas, klinov, unique="k1", username="klinov", ip="100.64.2.2"),
        "customer": customer,
        "klinov_subscriber": klinov,
        "tver_nas": tver_nas,
        "klin_nas": klin_nas,
    }


# --- branch scoping ---------------------------------------------------------------------------------------------


def test_traffic_page_is_scoped_to_the_users_branches(make_staff, two_branches, branch):
    # FAILS: views/traffic.py + monitoring/traffic.py sum UsageDay of every subscriber whatever the user's branch
    # limit: a Тверь-only engineer reads Клин's traffic, its subscriber counts and its NAS per plan.
    UsageDay.objects.create(subscriber=two_branches["customer"], day=TODAY, input_octets=1, output_octets=1_000)
    UsageDay.objects.create(
        subscriber=two_branches["klinov_subscriber"], day=TODAY, input_octets=7, output_octets=777_777_000
    )
    client = client_for(make_staff(Role.ENGINEER, branches=[branch]))

    response = client.get(f"/staff/network/traffic/?date_from={TODAY.isoformat()}&date_to={TODAY.isoformat()}")

    assert response.status_code == 200
    report = response.context["report"]
    assert report.output_octets == 1_000
    assert report.subscribers == 1
    assert 'data-nas="klin-nas"' not in response.content.decode()


def test_nas_card_hides_coa_failures_of_other_branches_subscribers(make_staff, two_branches, branch):
    # FAILS: views/nas.py nas_card -> monitoring.selectors.recent_coa_failures(nas) is not branch-scoped: the
    # card names (and links) another branch's subscriber whose Disconnect failed, while its sessions list is scoped.
    klinov = two_branches["klinov_subscriber"]
    network.queue_disconnect(klinov.pk, reason=CoaReason.SUSPEND)
    CoaRequest.objects.update(
        status=CoaStatus.FAILED, last_error=CoaError.NO_ANSWER, error_detail="3", finished_at=clock.now()
    )
    client = client_for(make_staff(Role.ENGINEER, branches=[branch]))

    html = client.get(f"/staff/network/nas/{two_branches['klin_nas'].pk}/").content.decode()

    assert "klinov" not in html  # its session is hidden from the list...
    assert "Клинов" not in html  # ...but not from the CoA failures table
    assert f"/staff/subscribers/{klinov.pk}/" not in html


def test_dashboard_online_figure_counts_only_the_users_sessions(make_staff, two_branches, branch):
    # FAILS (scoping inconsistency): dashboard.widgets.network_widget sums open sessions of every NAS for a
    # branch-limited user; the sessions page shows them 1 online, the dashboard 2.
    take_samples()
    client = client_for(make_staff(Role.ENGINEER, branches=[branch]))

    sessions_page = client.get("/staff/network/sessions/")
    dashboard = client.get("/staff/dashboard/widgets/")

    assert sessions_page.context["count"] == 1
    assert dashboard.context["board"].network.online == 1


def test_branch_limited_engineer_cannot_disconnect_or_coa_another_branchs_session(make_staff, two_branches, branch):
    client = client_for(make_staff(Role.ENGINEER, branches=[branch]))
    klinov = two_branches["klinov"]

    disconnect = client.post(f"/staff/network/sessions/{klinov.pk}/disconnect/", headers=HTMX)
    coa = client.post(f"/staff/network/sessions/{klinov.pk}/coa/", headers=HTMX)
    listing = client.get("/staff/network/sessions/").content.decode()
    export = client.get("/staff/network/sessions/export/?format=csv")

    assert (disconnect.status_code, coa.status_code) == (404, 404)
    assert CoaRequest.objects.count() == 0
    assert "klinov" not in listing
    assert "klinov" not in b"".join(export.streaming_content).decode()


def test_branch_limited_engineer_cannot_follow_another_branchs_coa(make_staff, two_branches, branch):
    requests = network.queue_disconnect(two_branches["klinov_subscriber"].pk, reason=CoaReason.SUSPEND)
    client = client_for(make_staff(Role.ENGINEER, branches=[branch]))

    assert client.get(f"/staff/network/coa/{requests[0].pk}/").status_code == 404


# --- permissions, methods, CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CASHIER, Role.SUPPORT])
def test_roles_without_network_manage_cannot_disconnect(make_staff, two_branches, role):
    client = client_for(make_staff(role))
    pk = two_branches["ivanov"].pk

    urls = [f"/staff/network/sessions/{pk}/{action}/" for action in ("disconnect", "coa")]
    responses = [client.post(url, headers=HTMX) for url in urls]

    assert [r.status_code for r in responses] == [403, 403]
    assert CoaRequest.objects.count() == 0


def test_disconnect_and_coa_refuse_get_and_a_post_without_csrf(make_staff, two_branches):
    engineer = make_staff(Role.ENGINEER)
    pk = two_branches["ivanov"].pk
    plain = client_for(engineer)
    strict = client_for(engineer, enforce_csrf_checks=True)

    assert plain.get(f"/staff/network/sessions/{pk}/disconnect/").status_code == 405
    assert plain.get(f"/staff/network/sessions/{pk}/coa/").status_code == 405
    assert strict.post(f"/staff/network/sessions/{pk}/disconnect/").status_code == 403
    assert strict.post(f"/staff/network/sessions/{pk}/coa/").status_code == 403
    assert CoaRequest.objects.count() == 0


def test_disconnect_of_a_closed_session_is_refused_not_queued(make_staff, two_branches):
    session = two_branches["ivanov"]
    write_batch(
        [
            AcctRecord(
                status=STOP,
                nas_id=session.nas_id,
                event_time=clock.now(),
                unique_id=session.unique_id,
                acct_session_id=session.acct_session_id,
                username="ivanov",
                subscriber_id=session.subscriber_id,
            )
        ]
    )
    session.refresh_from_db()
    assert session.status == SessionStatus.CLOSED
    client = client_for(make_staff(Role.ENGINEER))

    disconnect = client.post(f"/staff/network/sessions/{session.pk}/disconnect/", headers=HTMX)
    coa = client.post(f"/staff/network/sessions/{session.pk}/coa/", headers=HTMX)

    assert (disconnect.status_code, coa.status_code) == (422, 422)
    assert "already closed" in disconnect.content.decode() and "queued" not in disconnect.content.decode()
    assert CoaRequest.objects.count() == 0


def test_disconnect_redirect_next_cannot_leave_the_site(make_staff, two_branches):
    client = client_for(make_staff(Role.ENGINEER))

    response = client.post(
        f"/staff/network/sessions/{two_branches['ivanov'].pk}/disconnect/", {"next": "https://evil.example/"}
    )

    assert response.status_code == 302 and response["Location"] == "/staff/network/sessions/"


# --- tampered filters and cursors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "nas=abc",
        "nas=99999999999999999999999",
        "nas=-1",
        "plan=%00",
        "ip=1.1.1.1%00",
        "login=" + "x" * 10_000,
        "cursor=!!!",
        "cursor=eyJrIjpbImEiXX0",
        "cursor=" + "A" * 5000,
    ],
)
def test_tampered_session_filters_never_500(make_staff, two_branches, query):
    client = client_for(make_staff(Role.ENGINEER))

    page = client.get(f"/staff/network/sessions/?{query}")
    export = client.get(f"/staff/network/sessions/export/?format=csv&{query}")

    assert page.status_code in (200, 422)
    assert export.status_code in (200, 422)


@pytest.mark.parametrize(
    "period",
    [
        "date_from=0000-01-01&date_to=2026-01-01",
        "date_from=2026-01-01&date_to=99999-01-01",
        "date_from=2026-06-10&date_to=2026-06-01",
        "date_from=abc&date_to=2026-06-01",
        "date_from=2020-01-01&date_to=2026-06-01",
    ],
)
def test_traffic_page_refuses_bad_periods_with_422(make_staff, period):
    client = client_for(make_staff(Role.ENGINEER))

    assert client.get(f"/staff/network/traffic/?{period}").status_code == 422


@pytest.mark.parametrize(
    "period",
    [
        "date_from=9999-12-31&date_to=9999-12-31",
        "date_from=0001-01-01&date_to=0001-01-01",
    ],
)
def test_traffic_page_at_the_edges_of_the_calendar_does_not_500(make_staff, period):
    # FAILS: monitoring/traffic.py traffic_report does ``end + timedelta(days=1)`` (9999-12-31) and
    # ``end - timedelta(days=MAX_DAYS - 1)`` (0001-01-01): OverflowError, a 500. The form accepts any year 1..9999.
    client = client_for(make_staff(Role.ENGINEER))

    assert client.get(f"/staff/network/traffic/?{period}").status_code in (200, 422)


# --- export ---------------------------------------------------------------------------------------------------


def test_session_export_neutralises_formulas_in_logins(make_staff, customer, make_nas):
    nas = make_nas()
    start(nas, customer, unique="f1", username='=HYPERLINK("http://evil.example","x")')
    start(nas, customer, unique="f2", username="@SUM(1+1)")
    client = client_for(make_staff(Role.ENGINEER))

    response = client.get("/staff/network/sessions/export/?format=csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    cells = [row[0] for row in csv.reader(io.StringIO(text), delimiter=";")][1:]

    assert sorted(cells) == sorted(['\'=HYPERLINK("http://evil.example","x")', "'@SUM(1+1)"])


# --- pools, sampler -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("network_text", "size"), [("10.0.0.1/32", 1), ("10.0.0.0/31", 2), ("10.0.0.0/30", 2)])
def test_pool_sizes_of_tiny_networks(network_text, size):
    assert pool_size(network_text) == size


def test_pool_of_size_zero_or_nonsense_never_divides_by_zero(make_staff):
    assert pool_fill(0, 0).percent == 0.0
    assert pool_fill(3, 0).percent == 100.0
    IpPool.objects.create(name="junk", network="not-a-net")
    PoolUsage.objects.create(pool=IpPool.objects.create(name="one", network="10.0.0.1/32"), sampled_at=clock.now())
    client = client_for(make_staff(Role.ENGINEER))

    assert client.get("/staff/network/pools/").status_code == 200
    assert client.get("/staff/dashboard/widgets/").status_code == 200


def test_slash_32_pool_with_its_address_in_use_is_full(customer, make_nas, make_staff):
    nas = make_nas()
    IpPool.objects.create(name="single", network="100.64.9.9/32")
    start(nas, customer, unique="p", username="ivanov", ip="100.64.9.9")

    take_samples()

    usage = PoolUsage.objects.get(pool__name="single")
    assert usage.used == 1
    assert pool_fill(usage.used, pool_size("100.64.9.9/32")).percent == 100.0


def test_sampler_twice_in_the_same_moment_writes_one_sample_per_nas(customer, make_nas):
    nas = make_nas()
    start(nas, customer, unique="s", username="ivanov")
    now = clock.now()

    take_samples(now)
    take_samples(now)

    assert NasSample.objects.filter(nas=nas).count() == 1
    assert NasSample.objects.get(nas=nas).open_sessions == 1


def test_sampler_twice_in_one_slot_does_not_double_the_traffic(customer, make_nas):
    nas = make_nas()
    session = start(nas, customer, unique="s", username="ivanov")
    Session.objects.filter(pk=session.pk).update(last_delta_out=1_000_000, updated_at=clock.now())
    now = clock.now() + dt.timedelta(seconds=1)

    take_samples(now)
    take_samples(now + dt.timedelta(seconds=30))

    assert sum(NasSample.objects.filter(nas=nas).values_list("output_octets", flat=True)) == 1_000_000


def test_a_nas_deleted_with_samples_takes_them_along(customer, make_nas):
    nas = make_nas()
    take_samples()
    assert NasSample.objects.filter(nas=nas).exists()

    Nas.objects.filter(pk=nas.pk).delete()
    take_samples(clock.now() + dt.timedelta(minutes=5))

    assert not NasSample.objects.filter(nas_id=nas.pk).exists()
