"""The money holes an outside review found (issue 11), each walked through as a clumsy operator or an attacker
would, with the exact amounts. Every test here failed on the code before the fix (the defect is named in its
docstring); they run on PostgreSQL and SQLite alike unless marked."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, connections, transaction

from abonent.billing import actions, ledger
from abonent.billing.engine import BillingRun
from abonent.billing.models import (
    Charge,
    ChargeKind,
    LedgerTransaction,
    Subscription,
    SubscriptionStatus,
    UnbilledDay,
)
from abonent.billing.testing import balance, charged_for, run_on
from abonent.catalog import actions as catalog
from abonent.core import clock

D = Decimal
NOV_1, DEC_1, JAN_1 = dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)


def dec(day: int) -> dt.date:
    return dt.date(2026, 12, day)


# --- freeze and unfreeze ----------------------------------------------------------------------------------------


def test_a_freeze_and_an_unfreeze_on_the_first_day_do_not_give_the_month_away(subscribed, subscriber, admin, on):
    """Before: the unfreeze's fee collided with the credited one on ``(subscription, kind, period_start)`` and was
    dropped by ON CONFLICT DO NOTHING: December was free."""
    with on(DEC_1):
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)

    assert charged_for(subscribed, DEC_1, JAN_1) == D("650.00")
    # 5000 paid − November − December − the freeze fee of 7 × 3.00.
    assert balance(subscriber) == D("3679.00")
    assert run_on(dec(2)).charges == 0
    assert ledger.verify() == []


def test_two_freeze_cycles_mid_month_leave_exactly_the_days_served(subscribed, subscriber, admin, on):
    """Before: the second unfreeze's fee (same period start as the first's) was dropped: the rest of the month
    was free."""
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)
    with on(dec(12)):
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)
    with on(dec(12)):
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)

    # Served: 1–9 and 12–31 December, 29 of 31 days. By the run's rounding, R(x) = round(650·(32 − x)/31):
    # 650 − R(10) + R(12) = 650 − 461.29 + 419.35 = 608.06.
    assert charged_for(subscribed, DEC_1, JAN_1) == D("608.06")
    assert balance(subscriber) == D("5000.00") - D("650.00") - D("608.06") - D("42.00")
    assert ledger.verify() == []


def test_a_second_freeze_with_a_fee_on_the_same_day_is_charged_not_a_500(subscribed, subscriber, admin, on):
    """Before: the second freeze fee collided on the unique (subscription, kind, period_start): IntegrityError."""
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)
        actions.do_freeze_subscription(subscribed, days=7, acting_user=admin)

    fees = Charge.objects.filter(subscription=subscribed, kind=ChargeKind.FREEZE_FEE).values_list("amount", flat=True)
    assert sorted(fees) == [D("21.00"), D("21.00")]
    assert ledger.verify() == []


# --- a missed run, then a state change ----------------------------------------------------------------------------


@pytest.fixture
def behind(monthly, subscriber, admin, on):
    """On the plan since 1 November; the run of 1 December did not happen (the worker was down)."""
    with on(NOV_1):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        return actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)


def test_a_freeze_after_a_missed_run_charges_the_days_before_it(behind, subscriber, admin, on):
    """Before: the freeze credited nothing and charged nothing for 1–4 December, and the unfreeze charged from
    its own day: four days of service were never billed."""
    with on(dec(5)):
        actions.do_freeze_subscription(behind, days=10, acting_user=admin)

    # 1–4 December: 650 − round(650 × 27 / 31) = 650 − 566.13.
    assert charged_for(behind, DEC_1, JAN_1) == D("83.87")
    assert balance(subscriber) == D("5000.00") - D("650.00") - D("83.87") - D("30.00")
    assert ledger.verify() == []


def test_a_termination_after_a_missed_run_charges_up_to_it(behind, subscriber, admin, on):
    """Before: nothing was charged for 1–19 December."""
    with on(dec(20)):
        actions.do_terminate_subscription(behind, acting_user=admin, reason="moved away")

    # 1–19 December: 650 − round(650 × 12 / 31) = 650 − 251.61.
    assert charged_for(behind, DEC_1, JAN_1) == D("398.39")
    assert run_on(dec(21)).charges == 0
    assert ledger.verify() == []


def test_an_upgrade_after_a_missed_run_prices_the_days_before_it_at_the_old_plan(
    behind, make_plan, monthly, subscriber, admin, on
):
    """Before: the cursor was behind, so nothing was credited or charged and the run later charged the whole of
    December at the new plan's price, days already used included."""
    faster = make_plan("internet-300", "930.00", name="Интернет-300")
    monthly.switchable_to.add(faster)
    with on(dec(11)):
        actions.do_change_plan(behind, plan=faster, acting_user=admin)

    # 1–10 December at 650 (650 − R(11) = 650 − 440.32), 11–31 at 930 (round(930 × 21 / 31) = 630.00).
    assert charged_for(behind, DEC_1, JAN_1) == D("209.68") + D("630.00")
    assert run_on(dec(12)).charges == 0
    run_on(JAN_1)
    assert charged_for(behind, JAN_1, dt.date(2027, 2, 1)) == D("930.00")
    assert ledger.verify() == []


# --- one live subscription per service ---------------------------------------------------------------------------


def test_the_schema_allows_one_live_subscription_per_service(subscribed, monthly):
    """Before: only a check in code, which four simultaneous activations all passed."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(
            subscriber=subscribed.subscriber,
            plan=monthly,
            service=monthly.service,
            started_on=DEC_1,
            anchor_day=1,
            next_charge_on=DEC_1,
            created_at=clock.now(),
        )
    subscribed.status = SubscriptionStatus.TERMINATED
    Subscription.objects.filter(pk=subscribed.pk).update(status=SubscriptionStatus.TERMINATED)
    Subscription.objects.create(  # once ended, the service may be taken again
        subscriber=subscribed.subscriber,
        plan=monthly,
        service=monthly.service,
        started_on=DEC_1,
        anchor_day=1,
        next_charge_on=DEC_1,
        created_at=clock.now(),
    )


@pytest.mark.django_db(transaction=True)
def test_four_simultaneous_activations_make_one_subscription_and_one_fee(monthly, subscriber, admin):
    """Before: four parallel activations made four subscriptions and four fees."""
    if connection.vendor != "postgresql":
        pytest.skip("four transactions at once need PostgreSQL (SQLite has one writer)")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def activate():
        try:
            barrier.wait(timeout=10)
            with clock.travel_to(NOV_1):
                actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=activate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["ok"] + ["subscription_exists"] * 3
    assert Subscription.objects.filter(subscriber=subscriber).count() == 1
    assert Charge.objects.filter(subscription__subscriber=subscriber, kind=ChargeKind.FEE).count() == 1
    assert balance(subscriber) == D("-650.00")


# --- charges are the sub-ledger ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE billing_charge SET amount = 1",
        "UPDATE billing_charge SET period_start = '2026-12-02'",
        "DELETE FROM billing_charge",
    ],
)
def test_the_database_refuses_edits_and_deletes_of_charges(subscribed, statement):
    """Before: only the reference columns were guarded; an amount could be edited and a charge deleted."""
    before = list(Charge.objects.order_by("pk").values_list("pk", "amount", "period_start"))
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert list(Charge.objects.order_by("pk").values_list("pk", "amount", "period_start")) == before


def test_verify_reconciles_each_batch_posting_with_its_charges(subscribed, subscriber):
    """Before: verify never compared charges with postings, so an edited charge went unnoticed."""
    fee = Charge.objects.get(subscription=subscribed, period_start=DEC_1)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # a superuser bypassing every trigger
        else:  # rolled back with the test's transaction
            cursor.execute("DROP TRIGGER billing_charge_no_update")
        cursor.execute("UPDATE billing_charge SET amount = 600 WHERE id = %s", [fee.pk])
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")

    problems = ledger.verify()

    assert problems == [
        f"transaction {fee.transaction_id}: subscriber {subscriber.pk}'s charges sum to 600.00 but the posting is "
        "-650.00"
    ]


# --- reversing one charge ----------------------------------------------------------------------------------------


def test_a_reversed_fee_is_not_credited_again_by_a_termination(subscribed, subscriber, admin, on):
    """Before: ``reverse_charge`` left the charge unlinked, so the termination credited the reversed fee again."""
    fee = Charge.objects.get(subscription=subscribed, kind=ChargeKind.FEE, period_start=DEC_1)
    with on(dec(20)):
        # Every day served so far, 1–19 December: R(1) − R(20) = 650 − 251.61.
        reversal = actions.do_reverse_charge(fee, reason="outage since the 1st", acting_user=admin)
        actions.do_terminate_subscription(subscribed, acting_user=admin, reason="moved away")

    assert (reversal.reverses_id, reversal.amount, reversal.period_end) == (fee.pk, D("-398.39"), dec(20))
    # The termination gives back 20–31: R(20), and nothing the reversal gave back already.
    credit = Charge.objects.get(subscription=subscribed, kind=ChargeKind.PRORATION_CREDIT)
    assert credit.amount == D("-251.61")
    assert charged_for(subscribed, DEC_1, JAN_1) == D("0.00")
    assert balance(subscriber) == D("5000.00") - D("650.00")
    assert ledger.verify() == []


def test_some_days_of_a_fee_are_reversed_and_later_credits_count_them(subscribed, subscriber, admin, on):
    fee = Charge.objects.get(subscription=subscribed, kind=ChargeKind.FEE, period_start=DEC_1)
    with on(dec(16)):
        # 10–14 December without service: R(10) − R(15) = 461.29 − 356.45.
        reversal = actions.do_reverse_charge(
            fee, reason="no link 10–14 Dec", acting_user=admin, first_day=dec(10), until=dec(15)
        )
        with pytest.raises(ValidationError) as twice:
            actions.do_reverse_charge(fee, reason="again", acting_user=admin, first_day=dec(12), until=dec(16))
    with on(dec(20)):
        actions.do_terminate_subscription(subscribed, acting_user=admin, reason="moved away")

    assert reversal.amount == D("-104.84")
    assert twice.value.code == "already_reversed"
    # Served: 1–9 and 15–19 December; the termination credits 20–31 (R(20) = 251.61), the reversal 10–14.
    assert charged_for(subscribed, DEC_1, JAN_1) == D("650.00") - D("104.84") - D("251.61")
    assert ledger.verify() == []


def test_reversing_days_a_freeze_gave_back_already_gives_nothing(subscribed, admin, on):
    fee = Charge.objects.get(subscription=subscribed, kind=ChargeKind.FEE, period_start=DEC_1)
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=30, acting_user=admin)
    with on(dec(25)):
        with pytest.raises(ValidationError) as refused:
            actions.do_reverse_charge(fee, reason="double", acting_user=admin, first_day=dec(12), until=dec(20))
        with pytest.raises(ValidationError) as overlapping:
            actions.do_reverse_charge(fee, reason="no link", acting_user=admin, first_day=dec(5), until=dec(15))
        still = actions.do_reverse_charge(fee, reason="no link", acting_user=admin, first_day=dec(5), until=dec(10))

    assert refused.value.code == "nothing_to_reverse"
    # Only 5–9 December was still charged, and the refusal says so; R(5) − R(10) = 566.13 − 461.29.
    assert overlapping.value.error_dict["until"][0].code == "already_reversed"
    assert "12/09/2026" in str(overlapping.value) and "12/10/2026" not in str(overlapping.value)
    assert (still.amount, still.period_end) == (D("-104.84"), dec(10))
    assert ledger.verify() == []


def test_a_reversal_needs_the_admin_role(subscribed, operator):
    fee = Charge.objects.get(subscription=subscribed, kind=ChargeKind.FEE, period_start=DEC_1)
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        actions.do_reverse_charge(fee, reason="x", acting_user=operator)
    assert not Charge.objects.filter(kind=ChargeKind.REVERSAL).exists()


# --- amounts bounded to what the columns hold -----------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["-999999999999.99", "999999999999.99", "1000000.01", "-1000000.01"])
def test_an_adjustment_beyond_the_limit_is_refused_with_a_field_code(subscriber, admin, amount):
    """Before: two adjustments of −999,999,999,999.99 were a 500, and on PostgreSQL the next run aborted for
    everyone with "numeric field overflow"."""
    with pytest.raises(ValidationError) as refused:
        actions.do_adjust_balance(subscriber, amount=amount, reason="typo", acting_user=admin)
    assert refused.value.error_dict["amount"][0].code == "amount_too_large"
    assert not LedgerTransaction.objects.filter(kind="adjustment").exists()


def test_the_manual_limit_is_a_setting_and_the_balance_stays_in_range(subscriber, admin, settings):
    settings.ABONENT_MAX_MANUAL_AMOUNT = "9999999999.99"
    for n in range(10):  # ten of them reach −99,999,999,999.90, within the limit
        actions.do_adjust_balance(subscriber, amount="-9999999999.99", reason=f"test {n}", acting_user=admin)
    with pytest.raises(ValidationError) as refused:
        actions.do_adjust_balance(subscriber, amount="-9999999999.99", reason="one too many", acting_user=admin)
    assert refused.value.error_dict["amount"][0].code == "balance_out_of_range"
    assert balance(subscriber) == D("-99999999999.90")
    assert ledger.verify() == []


def test_a_run_parks_an_account_whose_balance_is_beyond_what_a_fee_can_be_added_to(subscribed, subscriber):
    """A balance pushed past the limit by hand (every trigger off) parks its subscription, not the chunk."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("DROP TRIGGER billing_account_balance_guard")
        cursor.execute(
            "UPDATE billing_ledgeraccount SET balance = -999999999999.00 WHERE subscriber_id = %s", [subscriber.pk]
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")

    result = run_on(JAN_1)

    assert [p.subscription_id for p in result.parked] == [subscribed.pk]
    assert result.charges == 0


# --- the catalog and the run ---------------------------------------------------------------------------------------


def test_a_price_for_today_is_refused_it_starts_tomorrow_at_the_earliest(monthly, admin, on):
    """Before: a price added for today after today's run priced the same day again at another price."""
    with on(dec(10)):
        with pytest.raises(ValidationError) as refused:
            catalog.do_add_plan_price(monthly, valid_from=dec(10), monthly_fee=D("700.00"), acting_user=admin)
        catalog.do_add_plan_price(monthly, valid_from=dec(11), monthly_fee=D("700.00"), acting_user=admin)
    assert refused.value.error_dict["valid_from"][0].code == "date_not_future"


def test_a_plan_created_during_a_run_does_not_abort_it(make_plan, subscriber, admin, on):
    """Before: the run's catalog, loaded at its start, had no such plan: KeyError, the run aborted."""
    run = BillingRun(DEC_1)
    run.catalog.load()  # the run has started
    late_plan = make_plan("late", "500.00")
    with on(NOV_1):
        subscription = actions.do_activate_subscription(subscriber, plan=late_plan, acting_user=admin)

    for bounds in run._chunk_bounds():
        run._charge_chunk(bounds=bounds)

    assert charged_for(subscription, DEC_1, JAN_1) == D("500.00")


def test_an_online_day_recorded_after_the_run_is_still_billed(make_plan, subscriber, admin, on):
    """Before: the 00:05 run skipped a day whose day before had no online record yet, and never looked again."""
    plan = make_plan("hotspot", "310.00", charge_mode="daily", charge_only_if_online=True)
    with on(NOV_1):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    actions.do_record_online_days([(subscriber.pk, dec(1))])

    run_on(dec(2))  # 2 December charged: online on the 1st
    run_on(dec(3))  # nothing known about the 2nd yet: the 3rd is left unbilled
    assert UnbilledDay.objects.filter(subscription=subscription, day=dec(3)).exists()
    actions.do_record_online_days([(subscriber.pk, dec(2))])  # a spool replayed late
    run_on(dec(4))

    days = sorted(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.FEE, period_start__gte=dec(1)).values_list(
            "period_start", flat=True
        )
    )
    assert days == [dec(2), dec(3)]
    assert charged_for(subscription, dec(3), dec(4)) == D("10.00")
    assert not UnbilledDay.objects.filter(day=dec(3)).exists()
    assert ledger.verify() == []


def test_a_payment_retried_after_midnight_is_the_same_payment(subscriber, on):
    """Before: the content hash held the date, which defaults to today: a gateway's retry after midnight was a
    conflict instead of the first answer."""
    with on(dt.datetime(2026, 12, 1, 23, 59, 30)):
        first = actions.do_post_payment(subscriber, amount="500.00", channel="gateway", external_id="pay-1")
    with on(dt.datetime(2026, 12, 2, 0, 0, 30)):
        retry = actions.do_post_payment(subscriber, amount="500.00", channel="gateway", external_id="pay-1")
    assert retry.pk == first.pk
    assert balance(subscriber) == D("500.00")


def test_a_freeze_ended_early_costs_the_days_it_lasted(subscribed, subscriber, admin, on):
    """Before: the whole fee of the days booked stayed charged (DOMAIN.md: a fee per frozen day)."""
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=30, acting_user=admin)  # 30 × 3.00
    with on(dec(20)):
        actions.do_unfreeze_subscription(subscribed, acting_user=admin)

    fees = Charge.objects.filter(subscription=subscribed, kind=ChargeKind.FREEZE_FEE).order_by("id")
    assert [(f.amount, f.period_start, f.reverses_id) for f in fees] == [
        (D("90.00"), dec(10), None),
        (D("-60.00"), dec(20), fees[0].pk),  # 20 of the 30 days not used
    ]
    assert ledger.verify() == []


def test_a_termination_during_a_freeze_gives_back_the_freeze_days_after_it(subscribed, subscriber, admin, on):
    with on(dec(10)):
        actions.do_freeze_subscription(subscribed, days=20, acting_user=admin)  # 60.00
    with on(dec(15)):
        actions.do_terminate_subscription(subscribed, acting_user=admin, reason="moved away")

    # 5 days used, the policy's minimum is 7: 21.00 kept, 39.00 given back; December's fee credited from the 10th.
    refund = Charge.objects.get(subscription=subscribed, kind=ChargeKind.FREEZE_FEE, amount__lt=0)
    assert (refund.amount, refund.period_start) == (D("-39.00"), dec(15))
    assert charged_for(subscribed, DEC_1, JAN_1) == D("650.00") - D("461.29")
    assert ledger.verify() == []


def test_verify_reports_a_posting_without_charges_in_a_batch(subscribed, make_subscriber):
    """A subscriber's posting slipped into a billing run's batch with no charge behind it (triggers bypassed)."""
    other = make_subscriber(phone="+79161230000")
    account = ledger.subscriber_account(other.pk)
    fee = Charge.objects.get(subscription=subscribed, period_start=DEC_1)
    revenue = ledger.revenue_account(fee.price.plan.service)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("DROP TRIGGER billing_posting_sealed")
        cursor.execute(
            "INSERT INTO billing_posting (transaction_id, account_id, amount) VALUES (%s, %s, -5), (%s, %s, 5)",
            [fee.transaction_id, account.pk, fee.transaction_id, revenue.pk],
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")

    problems = [p for p in ledger.verify() if "no charges" in p]

    expected = f"transaction {fee.transaction_id}: subscriber {other.pk} has a posting of -5.00 but no charges"
    assert problems == [expected]
