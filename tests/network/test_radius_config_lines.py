"""The lines that point a NAS at Abonent, per vendor, as the first-run wizard shows them to paste."""

from abonent.network.vendors import profile_for
from abonent.network.vendors.base import RadiusClientConfig

CONFIG = RadiusClientConfig(
    server="10.0.0.5",
    secret="Abc123def456ghi789",
    auth_port=1812,
    acct_port=1813,
    coa_port=3799,
    interim_seconds=300,
    nas_identifier="bras1",
)


def test_mikrotik_lines():
    assert profile_for("mikrotik").radius_config(CONFIG) == [
        "/radius add service=ppp address=10.0.0.5 secret=Abc123def456ghi789 authentication-port=1812 "
        "accounting-port=1813 require-message-auth=yes-for-request-resp",
        "/ppp aaa set use-radius=yes accounting=yes interim-update=5m",
        "/radius incoming set accept=yes port=3799",
    ]


def test_mikrotik_quotes_a_secret_routeros_would_split():
    config = RadiusClientConfig(**{**CONFIG.__dict__, "secret": 'a b"c$d', "interim_seconds": 90})
    lines = profile_for("mikrotik").radius_config(config)
    assert 'secret="a b\\"c\\$d"' in lines[0]
    assert lines[1].endswith("interim-update=90s")


def test_accel_ppp_radius_section():
    lines = profile_for("accel_ppp").radius_config(CONFIG)
    assert lines[:3] == [
        "[radius]",
        "nas-identifier=bras1",
        "server=10.0.0.5,Abc123def456ghi789,auth-port=1812,acct-port=1813,req-limit=0,fail-timeout=0,max-fail=10",
    ]
    assert "dae-server=0.0.0.0:3799,Abc123def456ghi789" in lines
    assert "acct-interim-interval=300" in lines and "acct-timeout=0" in lines and "blast-protection=1" in lines
    assert lines[-2:] == ["[shaper]", "attr=Filter-Id"]


def test_accel_ppp_without_message_authenticator_has_no_blast_protection():
    config = RadiusClientConfig(**{**CONFIG.__dict__, "message_authenticator": False})
    assert "blast-protection=1" not in profile_for("accel_ppp").radius_config(config)


def test_cisco_aaa_lines():
    lines = profile_for("cisco").radius_config(CONFIG)
    assert " address ipv4 10.0.0.5 auth-port 1812 acct-port 1813" in lines
    assert " client 10.0.0.5 server-key Abc123def456ghi789" in lines and " port 3799" in lines
