"""The terminal fast path tells the subscriber too: ``payments_terminal_pay`` (migration 0008) replaced by the same
function, same signature, with one statement more: a payment created and credited to a subscriber puts a
``payment_received`` notice into the payments outbox (``PaymentNotice``), as the intake's ``queue_received_notice``
does, in the same transaction and round trip. Everything else is 0008's text unchanged (a test compares them).

Reversed, 0008's function comes back (CREATE OR REPLACE with its text).
"""

import importlib

from django.db import migrations, models

from abonent.core.migration_ops import PostgresOnlySQL

TERMINAL_PAY = r"""
CREATE OR REPLACE FUNCTION payments_terminal_pay(
    p_channel varchar, p_external_id varchar, p_amount numeric, p_account varchar, p_closed_to_suspense boolean,
    p_received_at timestamptz, p_now timestamptz, p_ledger_date date, p_source_code varchar,
    p_credit_memo varchar, p_suspense_memo varchar, p_balance_limit numeric,
    p_receipt_provider varchar, p_receipt_reason varchar, p_receipt_error varchar, p_receipt_prefix varchar,
    p_ip inet, p_request_id varchar, p_timeout varchar,
    OUT outcome text, OUT payment_id bigint, OUT payment_amount numeric, OUT payment_created_at timestamptz,
    OUT payment_status varchar, OUT payment_subscriber_id bigint
) LANGUAGE plpgsql AS $$
DECLARE
    amount_text text := round(p_amount, 2)::text;
    sub record;
    first record;
    account_id bigint;
    balance numeric;
    source_id bigint;
    suspense_id bigint;
    reason varchar := '';
    tx_key varchar := 'payment:' || p_channel || '|' || p_external_id;
    debit_id bigint;
    tx_id bigint;
    pay_id bigint;
    inserted boolean;
BEGIN
    -- The agent's deadline (views.terminals), for every lock this waits on and the rest of the transaction:
    -- set here rather than by a statement of its own, one round trip less.
    PERFORM set_config('lock_timeout', p_timeout, true), set_config('statement_timeout', p_timeout, true);
    -- A repeat (intake._repeat), before the account is looked at: it is answered as the first time was.
    SELECT p.id, p.amount, p.account_ref, p.status, p.created_at, p.subscriber_id INTO first
      FROM payments_payment p WHERE p.channel = p_channel AND p.external_id = p_external_id;
    IF NOT FOUND THEN
        -- The subscriber's row lock, which closing the account takes too (intake.find_account): credited to an
        -- account open when this commits, or to suspense.
        SELECT s.id, s.status INTO sub FROM subscribers_subscriber s WHERE s.account_number = p_account FOR UPDATE;
        IF NOT FOUND THEN
            outcome := 'no_account';
            RETURN;
        END IF;
        IF sub.status = 'closed' THEN
            IF NOT p_closed_to_suspense THEN
                outcome := 'closed';
                RETURN;
            END IF;
            reason := 'closed_account';
        END IF;
        SELECT a.id INTO source_id FROM billing_ledgeraccount a WHERE a.code = p_source_code;
        SELECT a.id INTO suspense_id FROM billing_ledgeraccount a WHERE a.code = 'suspense';
        IF source_id IS NULL OR (reason <> '' AND suspense_id IS NULL) THEN
            outcome := 'fallback';
            RETURN;
        END IF;
        BEGIN
            IF reason = '' THEN
                -- ledger.subscriber_account(lock=True): created on first use, its row lock held until commit.
                SELECT a.id, a.balance INTO account_id, balance FROM billing_ledgeraccount a
                 WHERE a.subscriber_id = sub.id FOR UPDATE;
                IF NOT FOUND THEN
                    INSERT INTO billing_ledgeraccount (kind, code, name, balance, credit_limit, created_at, subscriber_id)
                    VALUES ('subscriber', 'subscriber:' || sub.id, 'subscriber ' || sub.id, 0, 0, p_now, sub.id)
                    ON CONFLICT DO NOTHING;
                    SELECT a.id, a.balance INTO account_id, balance FROM billing_ledgeraccount a
                     WHERE a.subscriber_id = sub.id FOR UPDATE;
                END IF;
                IF EXISTS (SELECT 1 FROM billing_promisedpayment pp WHERE pp.subscriber_id = sub.id AND pp.status = 'open')
                THEN
                    outcome := 'fallback';  -- the promised payment's repayment is the intake's
                    RETURN;
                END IF;
                IF abs(balance + p_amount) > p_balance_limit THEN
                    reason := 'balance_limit';
                    IF suspense_id IS NULL THEN
                        outcome := 'fallback';
                        RETURN;
                    END IF;
                END IF;
            END IF;
            IF reason = '' THEN
                debit_id := account_id;
            ELSE
                debit_id := suspense_id;
            END IF;
            INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at,
                                                   subscriber_id, memo, acting_user_id, reverses_id, legs)
            VALUES (
                tx_key,
                -- ledger.request_hash: kind|date|legs sorted by account, "<account>:<amount>"
                encode(sha256(convert_to(
                    'payment|' || to_char(p_ledger_date, 'YYYY-MM-DD') || '|' || CASE WHEN debit_id < source_id
                        THEN debit_id || ':' || amount_text || '|' || source_id || ':-' || amount_text
                        ELSE source_id || ':-' || amount_text || '|' || debit_id || ':' || amount_text END,
                    'UTF8')), 'hex'),
                'payment', p_ledger_date, p_now, CASE WHEN reason = '' THEN sub.id END,
                left(CASE WHEN reason = '' THEN p_credit_memo ELSE p_suspense_memo END, 500), NULL, NULL, 2
            )
            RETURNING id INTO tx_id;
            INSERT INTO billing_posting (transaction_id, account_id, amount)
            VALUES (tx_id, debit_id, p_amount), (tx_id, source_id, -p_amount);
            IF reason = '' THEN
                INSERT INTO core_auditevent (created_at, actor_id, actor_label, action, object_type, object_id,
                                             object_repr, subscriber_id, before, after, reason, ip_address, request_id)
                VALUES (p_now, NULL, 'system', 'billing.payment_posted', 'billing.ledgertransaction', tx_id::text,
                        left(tx_key, 255), sub.id, '{}',
                        jsonb_build_object('amount', amount_text, 'channel', p_channel, 'external_id', p_external_id),
                        '', p_ip, p_request_id);
            END IF;
            INSERT INTO payments_payment (channel, external_id, method, amount, account_ref, payer, payer_inn, status,
                                          suspense_reason, received_at, credited_at, created_at, refunded_amount,
                                          memo, status_reason, details, assign_transaction_id,
                                          cancel_transaction_id, subscriber_id, taken_by_id, transaction_id)
            VALUES (p_channel, p_external_id, 'terminal', p_amount, p_account, '', '',
                    CASE WHEN reason = '' THEN 'credited' ELSE 'suspense' END, reason, p_received_at,
                    CASE WHEN reason = '' THEN p_now END, p_now, 0, '', '', '{}', NULL, NULL, sub.id, NULL, tx_id)
            RETURNING id INTO pay_id;
            INSERT INTO core_auditevent (created_at, actor_id, actor_label, action, object_type, object_id,
                                         object_repr, subscriber_id, before, after, reason, ip_address, request_id)
            VALUES (p_now, NULL, 'system', CASE WHEN reason = '' THEN 'payments.received' ELSE 'payments.suspense' END,
                    'payments.payment', pay_id::text, left(p_channel || ':' || p_external_id, 255), sub.id, '{}',
                    CASE WHEN reason = ''
                        THEN jsonb_build_object('amount', amount_text, 'channel', p_channel, 'external_id', p_external_id)
                        ELSE jsonb_build_object('amount', amount_text, 'channel', p_channel, 'reason', reason,
                                                'account', p_account) END,
                    '', p_ip, p_request_id);
            -- What the payments.payment_received handler writes for an agent that fiscalizes itself.
            INSERT INTO payments_fiscalreceipt (operation, provider, external_id, generation, status, status_reason,
                                                amount, vat, attempts, next_attempt_at, last_error, uuid, request,
                                                created_at, fn_number, ecr_registration_number, ofd_url, report,
                                                payment_id, refund_id)
            VALUES ('sell', p_receipt_provider, p_receipt_prefix || 'pay-' || pay_id, 1, 'not_required',
                    left(p_receipt_reason, 500), p_amount, '', 0, NULL, left(p_receipt_error, 1000), '', '{}', p_now,
                    '', '', '', '{}', pay_id, NULL);
            -- What the intake's queue_received_notice writes: "payment received" in the payments outbox, which
            -- the notifications app drains (not for suspense: nobody to tell until staff assign it).
            IF reason = '' THEN
                INSERT INTO payments_paymentnotice (kind, subscriber_id, payload, dedup_key, created_at)
                VALUES ('payment_received', sub.id, jsonb_build_object('payment_id', pay_id), 'payment:' || pay_id, p_now)
                ON CONFLICT (dedup_key) DO NOTHING;
            END IF;
            outcome := 'created';
            payment_id := pay_id;
            payment_amount := p_amount;
            payment_created_at := p_now;
            payment_status := CASE WHEN reason = '' THEN 'credited' ELSE 'suspense' END;
            payment_subscriber_id := sub.id;
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent notice of the same payment inserted first (its ledger key or the payment's unique
            -- pair): everything above is undone, and the answer is the first payment, read with a new snapshot.
            SELECT p.id, p.amount, p.account_ref, p.status, p.created_at, p.subscriber_id INTO first
              FROM payments_payment p WHERE p.channel = p_channel AND p.external_id = p_external_id;
            IF NOT FOUND THEN
                RAISE;
            END IF;
        END;
    END IF;
    payment_id := first.id;
    payment_amount := first.amount;
    payment_created_at := first.created_at;
    payment_status := first.status;
    payment_subscriber_id := first.subscriber_id;
    IF first.amount = p_amount AND first.account_ref = p_account THEN
        outcome := 'repeat';
        RETURN;
    END IF;
    -- intake._record_conflict: one row per (payment, amount, account), counted; audited the first time.
    INSERT INTO payments_paymentconflict AS c (payment_id, amount, account_ref, times, first_at, last_at, resolved_at,
                                               resolution, resolved_by_id)
    VALUES (first.id, p_amount, p_account, 1, p_now, p_now, NULL, '', NULL)
    ON CONFLICT ON CONSTRAINT payments_conflict_uniq DO UPDATE SET times = c.times + 1, last_at = EXCLUDED.last_at
    RETURNING (c.xmax = 0) INTO inserted;
    IF inserted THEN
        INSERT INTO core_auditevent (created_at, actor_id, actor_label, action, object_type, object_id, object_repr,
                                     subscriber_id, before, after, reason, ip_address, request_id)
        VALUES (p_now, NULL, 'system', 'payments.conflict', 'payments.payment', first.id::text,
                left(p_channel || ':' || p_external_id, 255), first.subscriber_id,
                jsonb_build_object('amount', round(first.amount, 2)::text, 'account', first.account_ref),
                jsonb_build_object('amount', amount_text, 'account', p_account), '', p_ip, p_request_id);
    END IF;
    outcome := 'conflict';
END $$;
"""


def _terminal_pay_0008() -> str:
    # The function as 0008 created it, for the way back (CREATE OR REPLACE keeps the grants and the signature).
    old = importlib.import_module("abonent.payments.migrations.0008_perf_terminal_pay").TERMINAL_PAY
    return old.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):
    dependencies = [("payments", "0009_fixonline_maybe_sent")]

    operations = [
        migrations.AlterField(
            model_name="paymentnotice",
            name="kind",
            field=models.CharField(
                choices=[
                    ("autopay_reminder", "Autopay reminder"),
                    ("autopay_succeeded", "Autopay succeeded"),
                    ("autopay_declined", "Autopay declined"),
                    ("autopay_retry_scheduled", "Autopay declined, will retry"),
                    ("autopay_stopped", "Autopay stopped"),
                    ("method_unlinked", "Payment method unlinked"),
                    ("payment_received", "Payment received"),
                ],
                max_length=30,
                verbose_name="kind",
            ),
        ),
        PostgresOnlySQL(TERMINAL_PAY, _terminal_pay_0008()),
    ]
