"""Issue 17 on the subscriber card's billing: the header says how much is charged when and what to pay (the open
promised payment apart), the plan change lists prices and speeds by direction and warns before cutting the
subscriber off, freezes and promised payments show their amounts before anything is written, and what cannot be
done is greyed out with the reason."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import actions
from abonent.billing.models import (
    Freeze,
    LedgerTransaction,
    PromisedPayment,
    Subscription,
    SubscriptionStatus,
)
from abonent.billing.testing import balance
from abonent.core.models import AuditEvent

D = Decimal
NBSP = "\xa0"
HTMX = {"HX-Request": "true"}
NOV_1, NOV_16 = dt.date(2026, 11, 1), dt.date(2026, 11, 16)
DEC_1, DEC_16 = dt.date(2026, 12, 1), dt.date(2026, 12, 16)

pytestmark = pytest.mark.django_db


def rub(amount: str, *, decimal: str = ".") -> str:
    return f"{amount.replace('.', decimal)}{NBSP}₽"


@pytest.fixture
def plans(make_plan, freeze_policy, promised_policy):
    """650 ₽ (100/50 Mbit/s) and 900 ₽ (300/100 Mbit/s) a month, freezable (7–60 days, 3 ₽ a day), promised
    payments up to 500 ₽ for 3 days while the debt is below 300 ₽."""
    policies = {"freeze_policy": freeze_policy, "promised_payment_policy": promised_policy}
    return (
        make_plan("home-100", "650.00", name="Домашний 100", download_kbps=100_000, upload_kbps=50_000, **policies),
        make_plan("game-300", "900.00", name="Игровой 300", download_kbps=300_000, upload_kbps=100_000, **policies),
    )


@pytest.fixture
def client_of(make_staff):
    def make(role) -> Client:
        client = Client()
        client.force_login(make_staff(role))
        return client

    return make


def card(client, subscriber, **headers) -> str:
    response = client.get(f"/staff/subscribers/{subscriber.pk}/", headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def header_of(body: str) -> str:
    return body[body.index('<header class="card-header-bar') : body.index("</header>")]


def url(subscriber, rest: str) -> str:
    return f"/staff/subscribers/{subscriber.pk}/billing/{rest}"


def written() -> tuple:
    """What an action would have written: ledger transactions, audit rows, freezes, promised payments."""
    return (
        LedgerTransaction.objects.count(),
        AuditEvent.objects.count(),
        Freeze.objects.count(),
        PromisedPayment.objects.count(),
    )


@pytest.fixture
def gamer(subscriber, plans, admin, on):
    """Issue 17's subscriber: on the 900 ₽ plan since 1 December, 839.32 paid, so December's fee left −60.68; on
    16 December a promised payment of 500 ₽ made the balance 439.32."""
    with on(DEC_1):
        actions.do_post_payment(subscriber, amount=D("839.32"), channel="cash", external_id="c-1")
        subscription = actions.do_activate_subscription(subscriber, plan=plans[1], acting_user=admin)
    with on(DEC_16):
        actions.do_take_promised_payment(subscriber, acting_user=admin)
    assert balance(subscriber) == D("439.32")
    return subscription


# --- the header -------------------------------------------------------------------------------------------


def test_header_says_what_is_charged_when_and_what_to_pay_with_the_promised_part_apart(
    operator_client, subscriber, gamer, on
):
    with on(DEC_16):
        header = header_of(card(operator_client, subscriber))
    assert "sticky-top" in header
    assert f"<strong>Игровой 300</strong>, 300/100 Mbit/s, {rub('900.00')} a month" in header
    assert f'<strong class="">{rub("439.32")}</strong>' in header
    # The balance includes the promised payment: the header says so, and what is the subscriber's own.
    assert f"(of it a promised payment of {rub('500.00')} until 12/19/2026; own money {rub('-60.68')})" in header
    # 900 charged on 1 January; the promised 500 is repaid first from any payment: 900 + 500 − 439.32.
    assert f"01/01/2027: {rub('900.00')} will be charged" in header
    assert f'<strong class="header-pay">pay {rub("960.68")}</strong>' in header


def test_header_writes_the_figures_the_russian_way(operator_client, subscriber, gamer, on):
    with on(DEC_16):
        header = header_of(card(operator_client, subscriber, **{"Accept-Language": "ru"}))
    assert "01.01.2027" in header and rub("960.68", decimal=",") in header and rub("-60,68") in header


def test_header_shows_who_and_how_to_reach_them_before_any_panel(operator_client, subscriber, gamer, on):
    with on(DEC_16):
        body = card(operator_client, subscriber)
    header = header_of(body)
    assert 'id="account-number">' + subscriber.account_number in header
    assert 'href="tel:+79161234567"' in header and "Тверь, ул. Ленина, h. 5, apt. 12" in header
    # Phone and address come first, not ~2,000 px down under the passport.
    assert body.index('id="header-phone"') < body.index('id="panel-balance"') < body.index('id="panel-contacts"')


def test_cashier_without_subscription_rights_still_sees_the_money_in_the_header(client_of, subscriber, gamer, on):
    with on(DEC_16):
        header = header_of(card(client_of("cashier"), subscriber))
    assert f"pay {rub('960.68')}" in header and 'id="header-online"' not in header  # no NETWORK_VIEW


def test_balance_panel_shows_the_own_money_and_the_next_charge(operator_client, subscriber, gamer, on):
    with on(DEC_16):
        body = card(operator_client, subscriber)
    panel = body[body.index('id="panel-balance"') : body.index('id="panel-subscriptions"')]
    assert f"own money {rub('-60.68')}, the rest is the promised payment" in panel
    assert f"01/01/2027: {rub('900.00')} will be charged" in panel
    subscriptions = body[body.index('id="panel-subscriptions"') : body.index('id="panel-ledger"')]
    assert f'<span class="next-charge-amount">{rub("900.00")}</span>' in subscriptions


def test_header_and_panels_come_back_together_after_an_action(operator_client, subscriber, gamer, on):
    with on(DEC_16):
        response = operator_client.post(
            url(subscriber, "adjustments/"), {"amount": "100", "reason": "Goodwill"}, headers=HTMX
        )
    body = response.content.decode()
    assert response.status_code == 200
    assert '<div class="d-flex flex-wrap align-items-baseline column-gap-4 row-gap-1" id="header-billing" ' in body
    assert 'hx-swap-oob="true"' in body[body.index('id="header-billing"') - 100 :]
    assert f"pay {rub('860.68')}" in body


# --- plan change -------------------------------------------------------------------------------------------


@pytest.fixture
def home(subscriber, plans, admin, on):
    """On the 650 ₽ plan from 1 November with 1,000 ₽ paid: 350.00 left."""
    with on(NOV_1):
        actions.do_post_payment(subscriber, amount=D("1000.00"), channel="cash", external_id="c-1")
        return actions.do_activate_subscription(subscriber, plan=plans[0], acting_user=admin)


def test_plan_list_is_grouped_with_price_and_speed(operator_client, subscriber, home, plans, make_plan, on):
    make_plan("eco-50", "400.00", name="Эконом 50", download_kbps=50_000, upload_kbps=50_000)
    make_plan("same-100", "650.00", name="Другой 100", download_kbps=100_000, upload_kbps=100_000)
    with on(NOV_16):
        body = card(operator_client, subscriber)
    change = body.split(f'data-form="change-{home.pk}"')[1].split("</details>")[0]
    assert change.index('<optgroup label="Upgrade: takes effect now">') < change.index("Игровой 300: 300/100 Mbit/s")
    assert change.index('<optgroup label="Same price: takes effect now">') < change.index(
        f"Другой 100: 100/100 Mbit/s, {rub('650.00')} a month"
    )
    assert change.index('<optgroup label="Downgrade: from the next period">') < change.index(
        f"Эконом 50: 50/50 Mbit/s, {rub('400.00')} a month"
    )
    assert "---------" not in change
    # The "now, not at the next period" checkbox waits, hidden, for a downgrade to be chosen (console.js).
    assert '<div data-show-for-direction="downgrade" class="d-none">' in change
    assert 'data-direction="downgrade"' in change and 'data-plan-directions=""' in change


def test_upgrade_offers_no_downgrade_checkbox_and_ignores_one_sent(operator_client, subscriber, home, plans, on):
    with on(NOV_16):
        page = operator_client.get(
            url(subscriber, f"subscriptions/{home.pk}/plan-change/preview/"), {"plan": plans[1].pk, "force": "on"}
        ).content.decode()
    assert '<input type="hidden" name="force"' not in page
    assert "takes effect now." in page


def test_downgrade_chosen_without_javascript_shows_the_checkbox(operator_client, subscriber, plans, admin, on):
    with on(NOV_1):
        actions.do_post_payment(subscriber, amount=D("1000.00"), channel="cash", external_id="c-1")
        gaming = actions.do_activate_subscription(subscriber, plan=plans[1], acting_user=admin)
    preview = url(subscriber, f"subscriptions/{gaming.pk}/plan-change/preview/")
    with on(NOV_16):
        downgrade = operator_client.get(preview, {"plan": plans[0].pk}).content.decode()
        forced = operator_client.get(preview, {"plan": plans[0].pk, "force": "on"}).content.decode()
    # The page a browser without JavaScript gets: the choice again, the checkbox shown for the downgrade chosen.
    assert '<div data-show-for-direction="downgrade">' in downgrade
    assert "takes effect on 12/01/2026, at the next period" in downgrade
    assert (
        'data-amount="credit">+' + rub("450.00") in forced and '<input type="hidden" name="force" value="on">' in forced
    )


def test_preview_warns_when_the_change_leaves_the_subscriber_cut_off(operator_client, subscriber, plans, admin, on):
    with on(NOV_1):
        subscription = actions.do_activate_subscription(subscriber, plan=plans[0], acting_user=admin)
    with on(NOV_16):
        cut = operator_client.get(
            url(subscriber, f"subscriptions/{subscription.pk}/plan-change/preview/"),
            {"plan": plans[1].pk},
            headers=HTMX,
        ).content.decode()
        actions.do_adjust_balance(subscriber, amount=D("800.00"), reason="Paid", acting_user=admin)
        fine = operator_client.get(
            url(subscriber, f"subscriptions/{subscription.pk}/plan-change/preview/"),
            {"plan": plans[1].pk},
            headers=HTMX,
        ).content.decode()
    # −650 now, 125 more for the upgrade: −775 with no credit limit.
    assert f'data-amount="balance-after">{rub("-775.00")}</td>' in cut
    assert 'id="plan-change-restricts"' in cut
    assert f"After the change the balance is {rub('-775.00')} with a credit limit of {rub('0.00')}" in cut
    assert 'data-amount="balance-after">' + rub("25.00") in fine and 'id="plan-change-restricts"' not in fine


# --- freeze ------------------------------------------------------------------------------------------------


def test_freeze_states_its_fee_and_previews_the_amounts_before_anything_is_written(
    operator_client, subscriber, home, on
):
    with on(NOV_16):
        body = card(operator_client, subscriber)
        before = written()
        preview = operator_client.get(
            url(subscriber, f"subscriptions/{home.pk}/freeze/preview/"), {"days": "10"}, headers=HTMX
        )
    form = body.split(f'data-form="freeze-{home.pk}"')[1].split("</details>")[0]
    assert "From 7 to 60 days, 30 days a year (30 left)." in form
    assert f"Fee: {rub('3.00')} a day." in form
    text = preview.content.decode()
    assert preview.status_code == 200
    # 15 unused days of November's 650 back, 10 days × 3.00 taken: 350 + 325 − 30.
    assert f'data-amount="credit">+{rub("325.00")}</td>' in text
    assert f'data-amount="fee">-{rub("30.00")}</td>' in text
    assert f'data-amount="balance-after">{rub("645.00")}</td>' in text
    assert "Frozen for 10 days, to 11/25/2026 inclusive: service and fees resume on 11/26/2026." in text
    assert '<input type="hidden" name="days" value="10">' in text
    assert written() == before
    home.refresh_from_db()
    assert home.status == SubscriptionStatus.ACTIVE


def test_freeze_confirmed_from_the_preview_charges_what_it_showed(operator_client, subscriber, home, on):
    with on(NOV_16):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{home.pk}/freeze/"), {"days": "10", "reason": "Отпуск"}, headers=HTMX
        )
    assert response.status_code == 200
    assert balance(subscriber) == D("645.00")
    assert Subscription.objects.get(pk=home.pk).status == SubscriptionStatus.FROZEN


def test_freeze_the_balance_cannot_pay_is_greyed_out_with_the_reason(operator_client, subscriber, plans, admin, on):
    with on(NOV_1):
        subscription = actions.do_activate_subscription(subscriber, plan=plans[0], acting_user=admin)
    with on(NOV_16):
        body = card(operator_client, subscriber)
    actions_html = body[body.index(f'id="subscription-{subscription.pk}"') : body.index('id="panel-ledger"')]
    # −650.00 cannot pay the shortest freeze's 7 × 3.00: the button is there, disabled, with billing's reason.
    assert (
        f'<div class="unavailable-action" data-form="freeze-{subscription.pk}"><button class="btn btn-link btn-sm p-0 '
        'text-secondary text-decoration-none" type="button" disabled '
        f'aria-describedby="freeze-{subscription.pk}-reason">Freeze</button>'
    ) in actions_html
    assert f"The balance does not cover the freeze fee of {rub('21.00')}." in actions_html
    assert f'<details class="billing-form" data-form="freeze-{subscription.pk}"' not in actions_html


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("", "This field is required."),
        ("abc", "Enter a whole number."),
        ("0", "Ensure this value is greater than or equal to 1."),
        ("3", "A freeze lasts from 7 to 60 days."),
        ("61", "A freeze lasts from 7 to 60 days."),
        ("99999999999999999999", "Ensure this value is less than or equal to 366."),
    ],
)
def test_freeze_with_bad_days_says_why_next_to_the_field_and_writes_nothing(
    operator_client, subscriber, home, on, days, message
):
    before = written()
    with on(NOV_16):
        preview = operator_client.get(
            url(subscriber, f"subscriptions/{home.pk}/freeze/preview/"), {"days": days}, headers=HTMX
        )
        confirm = operator_client.post(
            url(subscriber, f"subscriptions/{home.pk}/freeze/"), {"days": days}, headers=HTMX
        )
    assert preview.status_code == 422 and message in preview.content.decode()
    assert 'data-amount="fee"' not in preview.content.decode()
    assert confirm.status_code == 422
    field = confirm.content.decode().split(f'id="freeze-{home.pk}-days"')[1].split("</div>")[0:2]
    assert message in "".join(field)
    assert written() == before
    assert Subscription.objects.get(pk=home.pk).status == SubscriptionStatus.ACTIVE


# --- promised payment --------------------------------------------------------------------------------------


def test_promised_payment_previews_amount_fee_and_due_date(operator_client, subscriber, home, on):
    with on(NOV_16):
        body = card(operator_client, subscriber)
        before = written()
        preview = operator_client.get(url(subscriber, "promised-payments/preview/"), {"amount": "200,50"}, headers=HTMX)
    assert f"Up to {rub('500.00')} for 3 days, no fee." in body
    text = preview.content.decode()
    assert preview.status_code == 200
    assert f'data-amount="promised">+{rub("200.50")}</td>' in text
    assert f'data-amount="balance-after">{rub("550.50")}</td>' in text
    assert "if none comes by 11/19/2026" in text
    assert '<input type="hidden" name="amount" value="200.50">' in text
    assert written() == before


def test_promised_payment_the_debt_forbids_is_greyed_out_with_the_reason(operator_client, subscriber, plans, admin, on):
    with on(NOV_1):
        actions.do_activate_subscription(subscriber, plan=plans[0], acting_user=admin)
    with on(NOV_16):
        body = card(operator_client, subscriber)
    panel = body[body.index('id="panel-balance"') : body.index('id="panel-subscriptions"')]
    assert f"Up to {rub('500.00')}" not in panel  # not offered to someone whose debt forbids it
    assert 'aria-describedby="promised-reason">Take a promised payment</button>' in panel
    assert f"The debt of {rub('650.00')} is too large for a promised payment (at most {rub('300.00')})." in panel


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "Enter a number."),
        ("-5", "The amount must be greater than zero."),
        ("0", "The amount must be greater than zero."),
        ("501", f"A promised payment is at most {rub('500.00')}."),
        ("1e3", "Enter a number."),
        ("５", "Type the amount with the digits 0–9."),
    ],
)
def test_promised_payment_with_a_bad_amount_says_why_and_writes_nothing(
    operator_client, subscriber, home, on, amount, message
):
    before = written()
    with on(NOV_16):
        preview = operator_client.get(url(subscriber, "promised-payments/preview/"), {"amount": amount}, headers=HTMX)
        confirm = operator_client.post(url(subscriber, "promised-payments/"), {"amount": amount}, headers=HTMX)
    assert preview.status_code == 422 and message in preview.content.decode()
    assert confirm.status_code == 422 and message in confirm.content.decode()
    assert 'id="promised-amount"' in confirm.content.decode()  # the form is shown again, with the message
    assert written() == before


# --- adjustments -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"amount": "abc", "reason": "x"}, "amount", "Enter a number."),
        ({"amount": "", "reason": "x"}, "amount", "This field is required."),
        ({"amount": "10", "reason": ""}, "reason", "This field is required."),
        ({"amount": "0", "reason": "x"}, "amount", "The amount must not be zero."),
        ({"amount": "99999999999999", "reason": "x"}, "amount", "no more than 12 digits before the decimal point"),
    ],
)
def test_adjustment_with_bad_input_says_why_next_to_the_field(
    operator_client, subscriber, home, on, data, field, message
):
    before = written()
    with on(NOV_16):
        response = operator_client.post(url(subscriber, "adjustments/"), data, headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 422
    after_field = body.split(f'id="adjust-{field}"')[1][:600]
    assert message in after_field
    assert written() == before and balance(subscriber) == D("350.00")


def test_credit_limit_with_bad_input_writes_nothing(operator_client, subscriber, home, on):
    before = written()
    with on(NOV_16):
        response = operator_client.post(url(subscriber, "credit-limit/"), {"amount": "-5", "reason": "x"}, headers=HTMX)
    assert response.status_code == 422 and written() == before


def test_the_card_needs_no_javascript_for_the_previews(operator_client: Client, subscriber, home, on):
    with on(NOV_16):
        freeze = operator_client.get(url(subscriber, f"subscriptions/{home.pk}/freeze/preview/"), {"days": "10"})
        promised = operator_client.get(url(subscriber, "promised-payments/preview/"), {"amount": "100"})
    assert "<nav" in freeze.content.decode() and 'data-amount="fee"' in freeze.content.decode()
    assert "<nav" in promised.content.decode() and 'data-amount="promised"' in promised.content.decode()


def test_the_plan_form_names_the_short_burst_apart_from_the_paid_turbo(admin, internet):
    client = Client()
    client.force_login(admin)
    body = client.get("/staff/catalog/plans/new/").content.decode()
    assert "Short burst: download, Mbit/s" in body and "not the paid turbo" in body
    assert "Burst download" not in body
