"""A small ISP for the lawful-export tests: a subscriber with a passport and an old account number, two sessions of
his written through the accounting writer, another subscriber who had the same IP address an hour later, payments
through the intake; officers logged in with a second factor."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
import time_machine
from django.test import Client, TestCase
from django_otp.oath import totp

from abonent.network import actions as network
from abonent.network.accounting import INTERIM, START, STOP, AcctRecord, write_batch
from abonent.network.models import LoginKind
from abonent.payments.actions.intake import do_receive_payment
from abonent.staff.permissions import Role
from abonent.staff.two_factor import do_confirm_two_factor, do_start_two_factor_enrolment
from abonent.subscribers.models import Subscriber

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
PERIOD = {"period_start": "2026-11-01T00:00", "period_end": "2026-11-10T00:00"}
BASIS = {"basis_kind": "court_order", "basis_number": "3/12-115", "basis_date": "2026-11-15"}


def utc(day, hour, minute=0):
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _now(settings, tmp_path):
    settings.ABONENT_LAWFUL_DIR = tmp_path / "lawful"
    settings.TIME_ZONE = "UTC"  # the form's times are the operator's; UTC keeps the assertions plain
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def make_officer(make_staff):
    """A lawful-interception officer with an authenticator (two-factor is required of the role by default)."""

    def make(username="sorm", branches=()):
        officer = make_staff(Role.LAWFUL, username=username, branches=branches)
        device = do_start_two_factor_enrolment(officer)
        code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"
        do_confirm_two_factor(officer, code=code)
        officer.refresh_from_db()
        device.refresh_from_db()
        officer.device = device
        return officer

    return make


def verified_client(user) -> Client:
    """A console session that passed the second factor with ``user``'s device (what the login's code step leaves
    in the session: django-otp's ``otp_login``)."""
    client = Client()
    client.force_login(user)
    session = client.session
    session["otp_device_id"] = user.device.persistent_id
    session.save()
    return client


@pytest.fixture
def officer(make_officer):
    return make_officer()


@pytest.fixture
def officer_client(officer):
    return verified_client(officer)


@pytest.fixture
def world(make_subscriber, admin, other_branch):
    nas = network.do_create_nas(
        acting_user=admin, name="bras-1", ip_address="10.0.0.1", secret="s" * 24, vendor="mikrotik"
    )
    ivanov = make_subscriber(
        last_name="Иванов",
        first_name="Иван",
        middle_name="Петрович",
        birth_date=dt.date(1980, 5, 17),
        passport_series="4510",
        passport_number="123456",
        passport_issued_by="=cmd|' /C calc'!A0",
        passport_issued_on=dt.date(2005, 6, 1),
    )
    # No action sets the old account number yet (the import will): the column is what the export reads.
    Subscriber.objects.filter(pk=ivanov.pk).update(legacy_account="173829")
    ivanov.refresh_from_db()
    petrov = make_subscriber(last_name="Петров", first_name="Пётр", phone="+79161234568", branch_obj=other_branch)
    login_i = network.do_create_login(
        ivanov, acting_user=admin, kind=LoginKind.PPPOE, username="ivanov", password="pw-123456", static_ip="10.9.0.7"
    )
    login_p = network.do_create_login(
        petrov, acting_user=admin, kind=LoginKind.PPPOE, username="petrov", password="pw-654321"
    )

    def record(status, unique, at, *, login, sub, ip, mac, i=0, o=0, cause=""):
        return AcctRecord(
            status=status,
            nas_id=nas.pk,
            event_time=at,
            unique_id=unique,
            acct_session_id=f"sess-{unique}",
            username=login.username,
            login_id=login.pk,
            subscriber_id=sub.pk,
            framed_ip=ip,
            calling_station_id=mac,
            nas_port_id="ether5",
            session_time=int((at - starts[unique]).total_seconds()),  # the writer dates the start from it
            input_octets=i,
            output_octets=o,
            terminate_cause=cause,
        )

    starts = {"a": utc(5, 13), "b": utc(6, 10), "c": utc(5, 15, 30)}
    mac = "AA:BB:CC:DD:EE:01"
    write_batch([record(START, "a", utc(5, 13), login=login_i, sub=ivanov, ip="10.1.2.3", mac=mac)])
    write_batch(
        [record(INTERIM, "a", utc(5, 13, 30), login=login_i, sub=ivanov, ip="10.1.2.3", mac=mac, i=1000, o=5000)]
    )
    write_batch(
        [
            record(
                STOP, "a", utc(5, 14, 30), login=login_i, sub=ivanov, ip="10.1.2.3", mac=mac, i=4000, o=90000,
                cause="User-Request",
            )
        ]
    )  # fmt: skip
    write_batch([record(START, "b", utc(6, 10), login=login_i, sub=ivanov, ip="10.1.2.99", mac=mac)])
    write_batch([record(INTERIM, "b", utc(6, 10, 10), login=login_i, sub=ivanov, ip="10.1.2.99", mac=mac, i=77, o=88)])
    # An hour after Ivanov's session ended, Petrov got the same address.
    petrov_mac = "aa:bb:cc:dd:ee:02"
    write_batch([record(START, "c", utc(5, 15, 30), login=login_p, sub=petrov, ip="10.1.2.3", mac=petrov_mac)])
    write_batch(
        [
            record(
                STOP,
                "c",
                utc(5, 16),
                login=login_p,
                sub=petrov,
                ip="10.1.2.3",
                mac=petrov_mac,
                i=5,
                o=6,
                cause="Lost-Carrier",
            )
        ]
    )
    do_receive_payment(
        channel="cash", external_id="c-1", amount=Decimal("650.00"), method="cash", subscriber=ivanov,
        received_at=utc(2, 9), acting_user=admin,
    )  # fmt: skip
    do_receive_payment(
        channel="bank", external_id="pp-77", amount=Decimal("1200.50"), method="bank",
        account_ref=ivanov.account_number, received_at=utc(7, 11), payer="@SUM(1+1) Иванов И.П.",
    )  # fmt: skip
    # Outside the period: not exported.
    do_receive_payment(
        channel="cash", external_id="c-0", amount=Decimal("100.00"), method="cash", subscriber=ivanov,
        received_at=dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), acting_user=admin,
    )  # fmt: skip
    return {"nas": nas, "ivanov": ivanov, "petrov": petrov, "login_i": login_i, "login_p": login_p}


def request_export(client, **fields):
    """POST the console's form and run the queued task as the worker would; returns the response and request."""
    from abonent.integrations.lawful.models import ExportRequest
    from abonent.integrations.lawful.tasks import generate_lawful_export

    data = {**BASIS, **PERIOD, "format": "vas-experts-sorm3", **fields}
    before = set(ExportRequest.objects.values_list("pk", flat=True))
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/staff/lawful/new/", data)
    created = ExportRequest.objects.exclude(pk__in=before).first()
    if created is not None:
        generate_lawful_export.call(request_id=created.pk)
        created.refresh_from_db()
    return response, created


def read_zip(data: bytes) -> dict[str, list[list[str]]]:
    """Every text file of the ZIP as rows of fields, by its kind (``ISP/aaa/aaa_v1_<stamp>.txt`` → ``aaa``)."""
    import csv

    files = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.endswith(".txt"):
                text = zf.read(name).decode("utf-8")
                kind = name.rsplit("/", 1)[-1].split("_v", 1)[0]
                files[kind] = list(csv.reader(io.StringIO(text), delimiter=";"))
    return files


def body(response) -> bytes:
    return b"".join(response.streaming_content)
