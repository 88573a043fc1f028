"""Recordings are served only through the authorised view: the permission, the branch of the call's subscriber,
and a path that cannot leave ABONENT_RECORDINGS_DIR."""

from __future__ import annotations

import os

import pytest
from django.test import Client

from abonent.integrations.telephony import actions
from abonent.integrations.telephony.models import Call
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded_call(make_subscriber, recordings):
    make_subscriber(phone="+79161234567")
    (recordings / "r1.wav").write_bytes(b"RIFF voice")
    actions.do_register_ring("ami", "c1", extension="101", caller_number="+79161234567")
    return actions.do_register_cdr("ami", "c1", status="answered", duration_seconds=30, recording_file="r1.wav")


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(call) -> str:
    return f"/staff/telephony/calls/{call.pk}/recording/"


def test_an_operator_of_the_branch_plays_it(recorded_call, make_staff, branch):
    response = client_of(make_staff(Role.OPERATOR, branches=[branch])).get(url(recorded_call))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"RIFF voice"
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]


def test_another_branchs_operator_gets_404(recorded_call, make_staff, other_branch):
    assert client_of(make_staff(Role.OPERATOR, branches=[other_branch])).get(url(recorded_call)).status_code == 404


def test_a_role_without_the_permission_gets_403(recorded_call, make_staff):
    assert client_of(make_staff(Role.CASHIER)).get(url(recorded_call)).status_code == 403


def test_anonymous_is_sent_to_login(recorded_call):
    response = Client().get(url(recorded_call))
    assert response.status_code == 302
    assert response["Location"].startswith("/staff/?next=")


def test_a_tampered_name_cannot_leave_the_directory(recorded_call, admin, recordings, tmp_path):
    # given rows whose name was changed behind the actions' back: "..", absolute, a symlink out
    secret = tmp_path / "secret.txt"
    secret.write_text("not a recording")
    os.symlink(secret, recordings / "link.wav")
    client = client_of(admin)
    for name in ("../secret.txt", str(secret), "link.wav", "missing.wav", ""):
        Call.objects.filter(pk=recorded_call.pk).update(recording_file=name)
        assert client.get(url(recorded_call)).status_code == 404, name


def test_a_call_of_an_unknown_number_is_only_for_staff_without_a_branch_limit(make_staff, branch, recordings):
    (recordings / "r2.wav").write_bytes(b"RIFF")
    actions.do_register_ring("ami", "c2", extension="101", caller_number="+79990001122")
    call = actions.do_register_cdr("ami", "c2", status="answered", duration_seconds=3, recording_file="r2.wav")
    assert client_of(make_staff(Role.OPERATOR, branches=[branch])).get(url(call)).status_code == 404
    assert client_of(make_staff(Role.OPERATOR)).get(url(call)).status_code == 200


def test_recording_names_are_checked_when_stored(settings, recordings):
    assert actions.recording_path(f"{recordings}/2026/12/a.wav") == "2026/12/a.wav"
    assert actions.recording_path("2026/12/a.wav") == "2026/12/a.wav"
    for bad in ("/var/spool/elsewhere/a.wav", "../a.wav", "a/../../b.wav", "a\x00.wav", "x" * 300):
        assert actions.recording_path(bad) == "", bad
