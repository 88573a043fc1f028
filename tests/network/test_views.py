"""The network console pages and the subscriber card's network panel: who sees what, what the forms do."""

import datetime as dt

import pytest
from django.test import Client

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network import actions as network
from abonent.network.accounting import START, AcctRecord, write_batch
from abonent.network.models import (
    AuthAttempt,
    AuthOutcome,
    CoaKind,
    CoaReason,
    CoaRequest,
    IpPool,
    Login,
    LoginKind,
    Nas,
    RejectReason,
    Session,
)
from abonent.staff.permissions import Role

from .conftest import SECRET

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
NAS_FORM = {
    "name": "bras-1",
    "ip_address": "10.0.0.1",
    "vendor": "mikrotik",
    "require_message_authenticator": "on",
    "coa_port": "3799",
    "interim_interval": "300",
    "debtor_address_list": "debtors",
    "debtor_pool": "",
    "is_active": "on",
}


def client_for(make_staff, role) -> Client:
    client = Client()
    client.force_login(make_staff(role))
    return client


@pytest.fixture
def engineer(make_staff):
    return client_for(make_staff, Role.ENGINEER)


@pytest.fixture
def cashier(make_staff):
    return client_for(make_staff, Role.CASHIER)


@pytest.fixture
def support(make_staff):
    return client_for(make_staff, Role.SUPPORT)


def open_session(subscriber, nas, *, username="ivanov", session_id="s-1", started_ago_s=3725) -> Session:
    """A session as accounting writes it from an Accounting-Request Start."""
    login = Login.objects.filter(subscriber=subscriber).first()
    write_batch(
        [
            AcctRecord(
                status=START,
                nas_id=nas.pk,
                event_time=clock.now(),
                unique_id=f"u-{session_id}",
                acct_session_id=session_id,
                username=username,
                login_id=login.pk if login else None,
                subscriber_id=subscriber.pk,
                framed_ip="100.64.0.7",
                calling_station_id="aa:bb:cc:dd:ee:01",
                session_time=started_ago_s,
                input_octets=1_500_000,
                output_octets=2_500_000_000,
            )
        ]
    )
    return Session.objects.get(nas=nas, unique_id=f"u-{session_id}")


# --- pages and permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/staff/network/nas/",
        "/staff/network/nas/new/",
        "/staff/network/sessions/",
        "/staff/network/pools/",
        "/staff/network/pools/new/",
    ],
)
def test_pages_render_for_an_engineer(engineer, make_nas, url):
    make_nas()

    response = engineer.get(url)

    assert response.status_code == 200


@pytest.mark.parametrize(
    "url", ["/staff/network/nas/", "/staff/network/nas/new/", "/staff/network/sessions/", "/staff/network/pools/"]
)
def test_pages_are_forbidden_for_a_cashier(cashier, url):
    assert cashier.get(url).status_code == 403


def test_support_sees_the_pages_but_cannot_change_anything(support, make_nas):
    nas = make_nas()

    assert support.get("/staff/network/nas/").status_code == 200
    assert support.get(f"/staff/network/nas/{nas.pk}/").status_code == 200  # the card
    assert support.get(f"/staff/network/nas/{nas.pk}/edit/").status_code == 403
    assert support.post("/staff/network/nas/new/", {**NAS_FORM, "secret": SECRET}).status_code == 403
    assert (
        support.post("/staff/network/pools/new/", {"name": "p", "network": "10.0.0.0/8", "kind": "regular"}).status_code
        == 403
    )
    assert Nas.objects.count() == 1
    assert IpPool.objects.count() == 0


def test_the_navigation_links_the_network_for_those_who_may_see_it(engineer, cashier):
    assert 'href="/staff/network/nas/"' in engineer.get("/staff/subscribers/").content.decode()
    assert 'href="/staff/network/nas/"' not in cashier.get("/staff/subscribers/").content.decode()


# --- NAS ----------------------------------------------------------------------------------------------------


def test_nas_list_shows_online_sessions_and_counters_summed_over_processes(engineer, customer, make_nas):
    from abonent.network.models import RadiusNode

    nas = make_nas()
    open_session(customer, nas)
    now = clock.now()
    for node, accepts in (("host:1812:0", 5), ("host:1812:1", 7)):
        RadiusNode.objects.create(
            node=node,
            started_at=now,
            updated_at=now,
            counters={nas.name: {"accepts": accepts, "rejects_bad_password": 2, "dropped_bad_authenticator": 1}},
            last_packet={nas.name: now.timestamp()},
        )

    html = engineer.get("/staff/network/nas/").content.decode()

    row = html.split(f'data-nas="{nas.name}"', 1)[1].split("</tr>", 1)[0]
    assert '<a href="/staff/network/sessions/?nas=' in row and ">1</a>" in row
    assert ">12<" in row  # accepts 5 + 7
    assert "Wrong password 4" in row
    assert 'title="bad_authenticator: 2">2<' in row


def test_nas_create_with_a_short_secret_shows_the_error_and_writes_nothing(engineer):
    response = engineer.post("/staff/network/nas/new/", {**NAS_FORM, "secret": "short-secret"})

    assert response.status_code == 422
    assert "The shared secret must be at least 16 characters long." in response.content.decode()
    assert "short-secret" not in response.content.decode()
    assert Nas.objects.count() == 0
    assert not AuditEvent.objects.filter(action="network.nas_created").exists()


def test_nas_create_stores_the_secret_encrypted_and_audits(engineer):
    response = engineer.post("/staff/network/nas/new/", {**NAS_FORM, "secret": SECRET})

    assert response.status_code == 302
    nas = Nas.objects.get()
    assert (nas.name, nas.ip_address, nas.secret) == ("bras-1", "10.0.0.1", SECRET)
    assert SECRET not in nas.secret_encrypted
    assert AuditEvent.objects.filter(action="network.nas_created").count() == 1


def test_the_secret_never_appears_in_the_html(engineer, make_nas):
    nas = make_nas()
    taken = make_nas(name="other", ip_address="10.9.9.9")

    pages = [
        engineer.get("/staff/network/nas/"),
        engineer.get(f"/staff/network/nas/{nas.pk}/"),
        engineer.get(f"/staff/network/nas/{nas.pk}/edit/"),
        # A failed edit with a new secret typed: the form comes back with its errors, the secret does not.
        engineer.post(
            f"/staff/network/nas/{nas.pk}/edit/", {**NAS_FORM, "name": taken.name, "secret": "a-new-secret-of-24-chars"}
        ),
    ]

    assert [p.status_code for p in pages] == [200, 200, 200, 422]
    for page in pages:
        html = page.content.decode()
        assert SECRET not in html
        assert "a-new-secret-of-24-chars" not in html
        assert nas.secret_encrypted not in html
    nas.refresh_from_db()
    assert (nas.name, nas.secret) == ("nas-mikrotik", SECRET)


def test_editing_with_an_empty_secret_keeps_it(engineer, make_nas):
    nas = make_nas()

    response = engineer.post(
        f"/staff/network/nas/{nas.pk}/edit/", {**NAS_FORM, "ip_address": "127.0.0.1", "secret": ""}
    )

    assert response.status_code == 302
    nas.refresh_from_db()
    assert (nas.name, nas.secret) == ("bras-1", SECRET)


def test_editing_with_a_new_secret_replaces_it(engineer, make_nas):
    nas = make_nas()

    engineer.post(f"/staff/network/nas/{nas.pk}/edit/", {**NAS_FORM, "secret": "another-long-shared-secret"})

    nas.refresh_from_db()
    assert nas.secret == "another-long-shared-secret"
    event = AuditEvent.objects.filter(action="network.nas_updated").get()
    assert event.after["secret_changed"] is True
    assert "another-long-shared-secret" not in str(event.after)


def test_the_blastradius_warning_shows_when_message_authenticator_is_not_required(engineer, make_nas):
    nas = make_nas(require_message_authenticator=False)
    make_nas(name="safe", ip_address="10.1.1.1")

    listing = engineer.get("/staff/network/nas/").content.decode()
    card = engineer.get(f"/staff/network/nas/{nas.pk}/").content.decode()
    edit = engineer.get(f"/staff/network/nas/{nas.pk}/edit/").content.decode()

    for html in (listing, card, edit):
        assert 'id="blastradius-warning"' in html
        assert "CVE-2024-3596" in html
    assert "Message-Authenticator is not required from this NAS: nas-mikrotik." in listing


def test_no_blastradius_warning_when_every_nas_requires_message_authenticator(engineer, make_nas):
    nas = make_nas()

    assert 'id="blastradius-warning"' not in engineer.get("/staff/network/nas/").content.decode()
    assert 'id="blastradius-warning"' not in engineer.get(f"/staff/network/nas/{nas.pk}/").content.decode()
    assert 'id="blastradius-warning"' not in engineer.get(f"/staff/network/nas/{nas.pk}/edit/").content.decode()


# --- sessions and pools -------------------------------------------------------------------------------------


def test_sessions_page_filters_by_nas(engineer, customer, make_nas):
    first = make_nas()
    second = make_nas(name="second", ip_address="10.2.2.2")
    open_session(customer, first, session_id="a")
    open_session(customer, second, session_id="b", username="other-login")

    everything = engineer.get("/staff/network/sessions/").content.decode()
    only_second = engineer.get(f"/staff/network/sessions/?nas={second.pk}").content.decode()

    assert "2 sessions online" in everything
    assert "1 session online" in only_second
    assert "other-login" in only_second and ">ivanov<" not in only_second


def test_sessions_page_shows_a_branch_limited_engineer_only_their_branches_subscribers(
    make_staff, customer, make_subscriber, other_branch, make_nas
):
    nas = make_nas()
    own = make_subscriber(last_name="Клинова", first_name="Анна", phone="+79161230000", branch_obj=other_branch)
    theirs = open_session(customer, nas, session_id="theirs")  # customer is in the fixture branch (Тверь)
    Session.objects.filter(pk=theirs.pk).update(framed_ip="100.64.1.1", calling_station_id="02:00:00:00:00:aa")
    open_session(own, nas, session_id="own", username="klinova")
    stray = open_session(customer, nas, session_id="stray", username="unknown-login")
    Session.objects.filter(pk=stray.pk).update(subscriber=None, framed_ip="100.64.9.9")
    client = Client()
    client.force_login(make_staff(Role.ENGINEER, branches=[other_branch]))

    page = client.get("/staff/network/sessions/").content.decode()

    assert "1 session online" in page
    assert "klinova" in page and "Клинова" in page
    assert ">ivanov<" not in page and "Иванов" not in page and "unknown-login" not in page
    assert "100.64.1.1" not in page and "02:00:00:00:00:aa" not in page and "100.64.9.9" not in page


def test_pool_create_and_list(engineer):
    bad = engineer.post("/staff/network/pools/new/", {"name": "main", "network": "not-a-net", "kind": "regular"})
    good = engineer.post("/staff/network/pools/new/", {"name": "main", "network": "100.64.0.0/16", "kind": "regular"})

    assert bad.status_code == 422
    assert "Not a network in CIDR notation" in bad.content.decode()
    assert good.status_code == 302
    assert list(IpPool.objects.values_list("name", "network")) == [("main", "100.64.0.0/16")]
    assert "100.64.0.0/16" in engineer.get("/staff/network/pools/").content.decode()


# --- the subscriber card's network panel --------------------------------------------------------------------


def test_the_card_shows_the_network_panel_to_an_engineer_not_to_a_cashier(engineer, cashier, customer, make_nas):
    nas = make_nas()
    session = open_session(customer, nas)
    AuthAttempt.objects.create(
        created_at=clock.now() - dt.timedelta(minutes=5),
        nas=nas,
        username="ivanov",
        subscriber=customer,
        outcome=AuthOutcome.REJECT,
        reason=RejectReason.BAD_PASSWORD,
    )

    html = engineer.get(f"/staff/subscribers/{customer.pk}/").content.decode()

    assert 'id="panel-network"' in html
    assert "Wrong password" in html
    assert "100.64.0.7" in html and "aa:bb:cc:dd:ee:01" in html
    assert "2.3\xa0GB / 1.4\xa0MB" in html  # down / up, in human units
    assert "1:02:0" in html  # started 3725 s ago
    assert f"/sessions/{session.pk}/disconnect/" in html
    assert 'id="panel-network"' not in cashier.get(f"/staff/subscribers/{customer.pk}/").content.decode()


def test_the_disconnect_button_queues_a_disconnect_request(engineer, customer, make_nas):
    nas = make_nas()
    session = open_session(customer, nas)

    response = engineer.post(
        f"/staff/network/subscribers/{customer.pk}/sessions/{session.pk}/disconnect/", headers=HTMX
    )

    assert response.status_code == 200
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason, request.session_id, request.subscriber_id) == (
        CoaKind.DISCONNECT,
        CoaReason.STAFF,
        session.pk,
        customer.pk,
    )
    html = response.content.decode()
    # Queued, not sent: the worker sends it; the panel follows its state until the NAS answers.
    assert "Disconnect of ivanov queued for nas-mikrotik: it is sent within a minute, the result shows here." in html
    assert "sent to nas-mikrotik" not in html
    assert "queued, not sent yet" in html and f'hx-get="/staff/network/coa/{request.pk}/"' in html
    assert f'data-coa="{request.pk}"' in html


def test_support_cannot_disconnect_and_sees_no_button(support, customer, make_nas):
    nas = make_nas()
    session = open_session(customer, nas)

    card = support.get(f"/staff/subscribers/{customer.pk}/").content.decode()
    response = support.post(f"/staff/network/subscribers/{customer.pk}/sessions/{session.pk}/disconnect/", headers=HTMX)

    assert 'id="panel-network"' in card
    assert "/disconnect/" not in card
    assert response.status_code == 403
    assert CoaRequest.objects.count() == 0


def test_disconnecting_a_closed_session_is_refused_in_the_panel(engineer, customer, make_nas):
    nas = make_nas()
    session = open_session(customer, nas)
    Session.objects.filter(pk=session.pk).update(status="closed", stopped_at=clock.now())

    response = engineer.post(
        f"/staff/network/subscribers/{customer.pk}/sessions/{session.pk}/disconnect/", headers=HTMX
    )

    assert response.status_code == 422
    assert "The session is already closed." in response.content.decode()
    assert CoaRequest.objects.count() == 0


def test_add_a_login_from_the_panel(engineer, make_subscriber):
    subscriber = make_subscriber()
    pool = IpPool.objects.create(name="main", network="100.64.0.0/16")

    response = engineer.post(
        f"/staff/network/subscribers/{subscriber.pk}/logins/",
        {"kind": LoginKind.PPPOE, "username": "petrov", "password": "pppoe-pass-1", "static_ip": "", "pool": pool.pk},
        headers=HTMX,
    )

    assert response.status_code == 200
    login = Login.objects.get()
    assert (login.subscriber_id, login.username, login.password, login.pool_id) == (
        subscriber.pk,
        "petrov",
        "pppoe-pass-1",
        pool.pk,
    )
    html = response.content.decode()
    assert "Login petrov added." in html
    assert "pppoe-pass-1" not in html


def test_a_pppoe_login_without_a_password_is_refused_in_place(engineer, make_subscriber):
    subscriber = make_subscriber()

    response = engineer.post(
        f"/staff/network/subscribers/{subscriber.pk}/logins/",
        {"kind": LoginKind.PPPOE, "username": "petrov", "password": ""},
        headers=HTMX,
    )

    assert response.status_code == 422
    assert "A PPPoE or hotspot login needs a password." in response.content.decode()
    assert Login.objects.count() == 0


def test_a_cashier_cannot_add_a_login(cashier, make_subscriber):
    subscriber = make_subscriber()

    response = cashier.post(
        f"/staff/network/subscribers/{subscriber.pk}/logins/",
        {"kind": LoginKind.PPPOE, "username": "petrov", "password": "pppoe-pass-1"},
        headers=HTMX,
    )

    assert response.status_code == 403
    assert Login.objects.count() == 0


def test_the_panel_says_why_a_session_ended_in_the_staff_language(engineer, customer, make_nas):
    nas = make_nas()
    lost = open_session(customer, nas, session_id="lost")
    odd = open_session(customer, nas, session_id="odd")
    Session.objects.filter(pk=lost.pk).update(status="closed", stopped_at=clock.now(), terminate_cause="Lost-Carrier")
    Session.objects.filter(pk=odd.pk).update(status="closed", stopped_at=clock.now(), terminate_cause="42")

    english = engineer.get(f"/staff/subscribers/{customer.pk}/").content.decode()
    russian = engineer.get(f"/staff/subscribers/{customer.pk}/", headers={"accept-language": "ru"}).content.decode()

    assert "carrier lost" in english and "Lost-Carrier" not in english
    assert "потеря несущей" in russian and "Lost-Carrier" not in russian
    assert "42" in russian  # a cause we have no words for is shown as the NAS sent it


def test_panel_query_count_does_not_grow_with_history(make_staff, customer, make_nas, rf, django_assert_num_queries):
    from abonent.network.panels import render_network_panel

    nas = make_nas()
    for n in range(15):
        open_session(customer, nas, session_id=f"s-{n}")
    network.queue_disconnect(customer.pk, reason=CoaReason.SUSPEND)
    request = rf.get("/")
    request.user = make_staff(Role.ENGINEER)

    # Logins, sessions, attempts, CoA requests, the pools of the add-login form.
    with django_assert_num_queries(5):
        html = render_network_panel(request, customer)

    assert html.count('class="btn btn-outline-danger btn-sm py-0 disconnect"') == 10


# --- admin --------------------------------------------------------------------------------------------------


def test_the_admin_never_shows_a_secret(admin, customer, make_nas):
    nas = make_nas()
    login = Login.objects.get()
    client = Client()
    client.force_login(admin)

    pages = [
        client.get("/staff/admin/network/nas/"),
        client.get(f"/staff/admin/network/nas/{nas.pk}/change/"),
        client.get("/staff/admin/network/login/"),
        client.get(f"/staff/admin/network/login/{login.pk}/change/"),
        client.get("/staff/admin/network/session/"),
        client.get("/staff/admin/network/coarequest/"),
        client.get("/staff/admin/network/radiusnode/"),
    ]

    assert [p.status_code for p in pages] == [200] * len(pages)
    for page in pages:
        html = page.content.decode()
        for secret in (SECRET, nas.secret_encrypted, "s3cret-pw", login.password_encrypted):
            assert secret not in html


def test_the_admin_keeps_the_nas_secret_when_left_empty(admin, make_nas):
    nas = make_nas()
    client = Client()
    client.force_login(admin)

    response = client.post(
        f"/staff/admin/network/nas/{nas.pk}/change/", {**NAS_FORM, "ip_address": "127.0.0.1", "new_secret": ""}
    )

    assert response.status_code == 302
    nas.refresh_from_db()
    assert (nas.name, nas.secret) == ("bras-1", SECRET)
