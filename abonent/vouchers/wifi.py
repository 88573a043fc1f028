"""Wi-Fi cards on the hotspot's walled-garden page (``/my/wifi/``): the card's code opens an anonymous prepaid
account on the series' pay-as-you-go plan, with a hotspot login, and credits the card's face value.

The login is ``wifi-`` and the card's serial number (``wifi-0000300001``), the password the code as printed
(``7KQM-X2PA-W9TD-HC4E``): both are on the card, so the buyer needs nothing else, and entering the code again shows
them again. Staff cannot create hotspot logins with that prefix (``network.actions.SYSTEM_HOTSPOT_PREFIX``), so a
card's login is never taken before it is opened. The NAS then logs in with them; the time plan's Session-Timeout
(billing/rating) ends the session when the money runs out.

A sold card keeps its promise after its plan is archived (the series' plan is activated past the archive check:
archiving closes a plan to new sign-ups, the card was paid for before). A plan with no price today, or no branch to
open the account in, is refused before anything is written, with a message for the buyer.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.billing import actions as billing
from abonent.catalog.models import PlanPrice
from abonent.core import clock
from abonent.core.deadlines import db_deadline
from abonent.core.models import Branch
from abonent.network.actions import SYSTEM_HOTSPOT_PREFIX, do_create_login
from abonent.network.models import LoginKind
from abonent.subscribers.actions import SubscriberData, do_create_subscriber

from . import codes, throttle
from .actions import LOCK_S, STATEMENT_S, _credit, _find_locked, _refuse, _usable, parse_code
from .models import SeriesKind, Voucher, VoucherStatus


@dataclass(frozen=True)
class WifiAccess:
    voucher: Voucher
    username: str
    password: str
    created: bool


def login_of(serial: str) -> str:
    """A Wi-Fi card's hotspot login, printed on the card."""
    return f"{SYSTEM_HOTSPOT_PREFIX}{serial}"


def cannot_open(code: str) -> ValidationError:
    """A refusal that is not about the code: the buyer can do nothing but ask (the operator sees ``code``)."""
    return ValidationError(
        _("This card cannot be activated right now through no fault of yours. Please ask the seller or call us."),
        code=code,
    )


def _branch_of(series) -> Branch:
    branch = series.branch or Branch.objects.filter(is_active=True).order_by("pk").first()
    if branch is None:
        raise cannot_open("no_branch")
    return branch


@transaction.atomic
def do_activate_wifi_voucher(*, code: str) -> WifiAccess:
    """Open the hotspot account of a sold Wi-Fi card (``code`` bare). Once per card: the card's row is locked and
    its ledger key unique; the same code again returns the same login."""
    db_deadline(lock=LOCK_S, statement=STATEMENT_S, unless_set=True)
    card = _find_locked(code)
    if card.series.kind != SeriesKind.WIFI:
        raise _refuse(_("This is a top-up card: enter it in your personal account."), "card_not_wifi")
    password = codes.printed(code)
    username = login_of(card.serial)
    if card.status == VoucherStatus.ACTIVATED:
        return WifiAccess(card, username, password, created=False)
    _usable(card, None)
    series = card.series
    branch = _branch_of(series)
    if not PlanPrice.objects.filter(plan_id=series.plan_id, valid_from__lte=clock.today()).exists():
        raise cannot_open("plan_without_price")
    subscriber = do_create_subscriber(
        SubscriberData(branch_id=branch.pk, last_name=_("Wi-Fi card"), first_name=card.serial), acting_user=None
    )
    # The money first: activating the plan may charge what is due at once.
    _credit(card, subscriber, acting_user=None)
    subscription = billing.do_activate_subscription(
        subscriber,
        plan=series.plan,
        acting_user=None,
        reason=_("Wi-Fi card %(serial)s") % {"serial": card.serial},
        allow_archived=True,
    )
    do_create_login(
        subscriber,
        acting_user=None,
        kind=LoginKind.HOTSPOT,
        username=username,
        password=password,
        subscription=subscription,
    )
    return WifiAccess(card, username, password, created=True)


def activate_wifi(*, code: str, client_ip: str | None) -> WifiAccess:
    """The public page's entry: typo refused uncounted, the attempt counted by the client's network, then the card."""
    bare = parse_code(code)
    attempt = throttle.begin("", client_ip)
    access = do_activate_wifi_voucher(code=bare)
    throttle.succeeded(attempt)
    return access
