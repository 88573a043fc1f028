"""The terminal fast path accepts the old system's account number too (docs/adr/0019): ``payments_terminal_pay``
(migration 0010) replaced by the same function, same signature, whose lookup of the account tries
``legacy_account`` when no subscriber has ``p_account`` as ours, as ``subscribers.accounts.subscriber_by_account``
does for the intake. Nothing else changes (a test compares the texts); a payment by our number costs no more.
A statement line's ``rule`` gains ``legacy_account``.

Reversed, 0010's function comes back.
"""

import importlib

from django.db import migrations, models

from abonent.core.migration_ops import PostgresOnlySQL

_0010 = importlib.import_module("abonent.payments.migrations.0010_paynotice_terminal_pay_notice").TERMINAL_PAY

OURS = (
    "        SELECT s.id, s.status INTO sub FROM subscribers_subscriber s "
    "WHERE s.account_number = p_account FOR UPDATE;\n"
)
EITHER = OURS + (
    "        IF NOT FOUND THEN\n"
    "            -- The old system's number, exact (subscribers.accounts): it never equals one of ours.\n"
    "            SELECT s.id, s.status INTO sub FROM subscribers_subscriber s WHERE s.legacy_account = p_account\n"
    "               FOR UPDATE;\n"
    "        END IF;\n"
)
assert _0010.count(OURS) == 1
TERMINAL_PAY = _0010.replace(OURS, EITHER)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0010_paynotice_terminal_pay_notice"),
        ("subscribers", "0006_legacy_account"),
    ]

    operations = [
        PostgresOnlySQL(TERMINAL_PAY, _0010),
        # Statement lines matched by an old account number in the purpose (statements.matching) say so.
        migrations.AlterField(
            model_name="statementline",
            name="rule",
            field=models.CharField(
                blank=True,
                choices=[
                    ("account_number", "Account number in the purpose"),
                    ("legacy_account", "Old account number in the purpose"),
                    ("contract", "Contract number in the purpose"),
                    ("inn", "Payer's INN"),
                ],
                max_length=20,
                verbose_name="matched by",
            ),
        ),
    ]
