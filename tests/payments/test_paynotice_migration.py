"""Migration 0010: ``payments_terminal_pay`` is 0008's function with the "payment received" notice added and nothing
else changed, and reversing the migration puts 0008's function back."""

import difflib
import importlib

import pytest
from django.core.management import call_command
from django.db import connection

OLD = importlib.import_module("abonent.payments.migrations.0008_perf_terminal_pay")
NEW = importlib.import_module("abonent.payments.migrations.0010_paynotice_terminal_pay_notice")
# What is deployed now: 0010's function with the old account number looked up too (tests/payments/test_legacy_account).
LATEST = importlib.import_module("abonent.payments.migrations.0011_terminal_pay_legacy_account")


def test_0010s_function_is_0008s_with_only_the_notice_added():
    diff = list(difflib.ndiff(OLD.TERMINAL_PAY.splitlines(), NEW.TERMINAL_PAY.splitlines()))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:].strip() for line in diff if line.startswith("+ ")]
    assert removed == ["CREATE FUNCTION payments_terminal_pay("]
    assert added[0] == "CREATE OR REPLACE FUNCTION payments_terminal_pay("
    assert [line for line in added[1:] if not line.startswith("--")] == [
        "IF reason = '' THEN",
        "INSERT INTO payments_paymentnotice (kind, subscriber_id, payload, dedup_key, created_at)",
        "VALUES ('payment_received', sub.id, jsonb_build_object('payment_id', pay_id), 'payment:' || pay_id, p_now)",
        "ON CONFLICT (dedup_key) DO NOTHING;",
        "END IF;",
    ]


def _source() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'payments_terminal_pay'")
        (source,) = cursor.fetchone()
    return source.strip()


def _body(sql: str) -> str:
    return sql.split("$$", 2)[1].strip()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the function is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_the_migration_reversed_restores_0008s_function_and_forward_again_0010s():
    assert _source() == _body(LATEST.TERMINAL_PAY)
    try:
        call_command("migrate", "payments", "0010_paynotice_terminal_pay_notice", verbosity=0)
        assert _source() == _body(NEW.TERMINAL_PAY)
        call_command("migrate", "payments", "0009_fixonline_maybe_sent", verbosity=0)
        assert _source() == _body(OLD.TERMINAL_PAY)
    finally:
        call_command("migrate", "payments", verbosity=0)
    assert _source() == _body(LATEST.TERMINAL_PAY)
