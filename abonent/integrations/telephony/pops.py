"""The screen-pop: what the process that hears a ring writes (``publish``) and what each operator's browser is sent
(``for_viewer``).

The writer (``abonent telephony`` or the webhook's web process) knows the call and the matched subscribers but not
who will look, so it writes everything a pop may show, with each subscriber's branch. The web process holding the
operator's SSE stream cuts it down to what that operator may see (their branches, their permissions) and words it in
their language. Delivery between the processes: docs/telephony.md, "Screen-pop delivery".
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.core.money import format_money
from abonent.core.phones import format_phone
from abonent.staff.permissions import Perm, allowed_branch_ids, permissions_of

from . import selectors
from .models import FINAL_STATUSES, Call, ScreenPop
from .selectors import MATCH_LIMIT

CHANNEL = "abonent_screen_pop"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; a bigger pop goes by its id and is read from the table.
NOTIFY_LIMIT = 7000
# Pops older than this are deleted (prune_pops): a browser that was away does not want yesterday's rings.
KEEP = dt.timedelta(minutes=10)
EXTENSION_MAX = 20  # ScreenPop.extension's and Extension.number's max_length


@transaction.atomic
def send_pop(source: str, pbx_call_id: str, *, extension: str, caller_number: str) -> ScreenPop | None:
    """Pop ``extension``'s screen for an incoming ring: who calls, with their figures. Nothing for a call already
    finished (a replayed ring after a reconnect)."""
    sent = send_pops([(source, pbx_call_id, extension, caller_number)])
    return sent[0] if sent else None


def send_pops(rings: list[tuple[str, str, str, str]]) -> list[ScreenPop]:
    """``send_pop`` for many rings ``(source, pbx_call_id, extension, caller_number)`` at once, in a fixed number of
    queries however many (the ring lane's batch at 200 calls/s): finished calls, the numbers' holders, their
    figures, the pops, the notifications."""
    # A peer name longer than any extension (a trunk's, 21+ characters) can be no operator's desk, and its row would
    # make PostgreSQL refuse the whole batch's INSERT: the other rings' pops with it.
    rings = [r for r in rings if 0 < len(r[2]) <= EXTENSION_MAX]
    if not rings:
        return []
    finished = set(
        Call.objects.filter(pbx_call_id__in={r[1] for r in rings}, status__in=FINAL_STATUSES).values_list(
            "source", "pbx_call_id"
        )
    )
    rings = [r for r in rings if (r[0], r[1]) not in finished]
    numbers = {r: selectors.normalize_number(r[3]) for r in rings}
    holders = selectors.holders_of([n for n in numbers.values() if n])
    facts = selectors.card_facts(sorted({s.pk for found in holders.values() for s in found[:MATCH_LIMIT]}))
    now = clock.now()
    heard = time.time()
    pops = []
    for ring in rings:
        source, pbx_call_id, extension, caller_number = ring
        found = holders.get(numbers[ring], [])
        payload = {
            "source": source,
            "pbx_call_id": pbx_call_id,
            "number": caller_number,
            "e164": numbers[ring],
            "matches": [_match(s, facts[s.pk]) for s in found[:MATCH_LIMIT]],
            "more": len(found) > MATCH_LIMIT,
            # Wall-clock seconds when the writer had the ring: the tests' latency start.
            "heard": heard,
        }
        pops.append(ScreenPop(extension=extension, payload=payload, created_at=now))
    pops = ScreenPop.objects.bulk_create(pops)
    if connection.vendor == "postgresql" and pops:
        messages = []
        for pop in pops:
            message = json.dumps(
                {"id": pop.pk, "extension": pop.extension, "payload": pop.payload}, separators=(",", ":")
            )
            if len(message.encode()) > NOTIFY_LIMIT:
                message = json.dumps({"id": pop.pk, "extension": pop.extension})
            messages.append(message)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_notify(%s, m)) FROM unnest(%s::text[]) AS m", [CHANNEL, messages])
    return pops


def _match(s, facts: dict) -> dict:
    return {
        "id": s.pk,
        "branch": s.branch_id,
        "account": s.account_number,
        "name": s.display_name,
        "closed": s.is_closed,
        "balance": str(facts["balance"]),
        "access": facts["access"],
        "open_tickets": facts["open_tickets"],
    }


def prune_pops() -> int:
    return ScreenPop.objects.filter(created_at__lt=clock.now() - KEEP).delete()[0]


@dataclass(frozen=True)
class Viewer:
    """Who holds an SSE stream: read once when it opens (a changed role or branch applies on the next page)."""

    user_id: int
    branch_ids: frozenset[int] | None
    perms: frozenset[str]
    language: str

    @classmethod
    def of(cls, user, language: str) -> Viewer:
        ids = allowed_branch_ids(user)
        return cls(user.pk, frozenset(ids) if ids is not None else None, frozenset(permissions_of(user)), language)

    def sees_branch(self, branch_id: int) -> bool:
        return self.branch_ids is None or branch_id in self.branch_ids


def for_viewer(payload: dict, viewer: Viewer) -> dict:
    """The pop as ``viewer`` is shown it: a subscriber of a branch they may not see is only "a subscriber of another
    branch" (no name, account or money); balance, access state and requests each need their permission."""
    with translation.override(viewer.language):
        number = format_phone(payload.get("e164") or "") if payload.get("e164") else payload.get("number") or ""
        shown = []
        may_open = Perm.SUBSCRIBER_VIEW in viewer.perms
        for m in payload.get("matches", []):
            if not may_open or not viewer.sees_branch(m["branch"]):
                shown.append({"foreign": True, "text": _("A subscriber of another branch")})
                continue
            lines = []
            if Perm.BILLING_VIEW in viewer.perms:
                lines.append(_("Balance: %(amount)s") % {"amount": format_money(m["balance"])})
            if Perm.DUNNING_VIEW in viewer.perms:
                lines.append(_("Access: %(state)s") % {"state": _access_label(m["access"])})
            if Perm.TICKET_VIEW in viewer.perms:
                lines.append(_("Open requests: %(count)s") % {"count": m["open_tickets"]})
            if m.get("closed"):
                lines.append(_("Account closed"))
            shown.append(
                {
                    "url": reverse("subscribers:card", args=[m["id"]]),
                    "account": m["account"],
                    "name": m["name"],
                    "lines": lines,
                }
            )
        return {
            "pbx_call_id": payload.get("pbx_call_id"),
            "heard": payload.get("heard"),
            "title": _("Incoming call: %(number)s") % {"number": number or _("unknown number")},
            "subscribers": shown,
            "none": _("No subscriber has this number.") if not shown else "",
            "more": _("More subscribers have this number.") if payload.get("more") else "",
            "close": _("Close"),
        }


def _access_label(state: str) -> str:
    from abonent.dunning.models import AccessStateKind

    try:
        return str(AccessStateKind(state).label)
    except ValueError:
        return state
