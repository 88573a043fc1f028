"""What an integration's API token may reach (docs/webhooks.md, "API tokens and scopes").

Every API path belongs to one area (``area_of``): ``subscribers``, ``payments`` or ``tickets``, or none. An
integration token (``IntegrationToken``) is refused, with a 403 and a stable code, on

* any write (not GET/HEAD/OPTIONS) when it holds ``read_only``: ``scope_read_only``;
* a path of an area it does not hold: ``scope_missing``;
* a path of no area (RADIUS, the portal's ``my/``, catalog and pricing writes, documents …): ``scope_outside``.

Its service account's role is still asked by each endpoint afterwards: the scopes only ever narrow it. A token
that is not an integration's (a person's, a RADIUS front-end's) is not looked at here.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from abonent.api.errors import ApiError

from .models import IntegrationToken, Scope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# First match wins: money on a subscriber's account is the payments area, the rest of the subscriber the
# subscribers area. Paths are those under /api/v1/.
AREAS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^(payments|online-payments|transactions|charges)(/|$)"), Scope.PAYMENTS),
    (
        re.compile(
            r"^subscribers/[^/]+/(balance|ledger|adjustments|one-off-charges|online-payments|promised-payments"
            r"|credit-limit|autopay)(/|$)"
        ),
        Scope.PAYMENTS,
    ),
    # What a subscription was charged: money, as the subscriber's ledger is.
    (re.compile(r"^subscriptions/[^/]+/charges(/|$)"), Scope.PAYMENTS),
    (re.compile(r"^(tickets|requests)(/|$)"), Scope.TICKETS),
    (re.compile(r"^(subscribers|subscriptions|access-states)(/|$)"), Scope.SUBSCRIBERS),
    # The catalog, read: what a subscriber's plan is called and costs.
    (re.compile(r"^(plans|turbos|time-packages)(/|$)"), Scope.SUBSCRIBERS),
]
API_PREFIX = "/api/v1/"


def area_of(path: str) -> str | None:
    if not path.startswith(API_PREFIX):
        return None
    rest = path[len(API_PREFIX) :]
    for pattern, area in AREAS:
        if pattern.match(rest):
            return area
    return None


def check_scopes(request, api_token) -> None:
    """The API auth's hook (``api.auth.register_token_check``): raises ``ApiError(403)`` when ``api_token`` is an
    integration's and the request is beyond its scopes."""
    scopes = IntegrationToken.objects.filter(token_id=api_token.pk).values_list("scopes", flat=True).first()
    if scopes is None:
        return
    scopes = set(scopes)
    if Scope.READ_ONLY in scopes and request.method not in SAFE_METHODS:
        raise ApiError(403, "scope_read_only", _("This integration's token is read-only."))
    area = area_of(request.path_info)  # without the site's prefix (SCRIPT_NAME), as the URLconf sees it
    if area is None:
        raise ApiError(403, "scope_outside", _("Integration tokens do not reach this endpoint."))
    if area not in scopes:
        raise ApiError(403, "scope_missing", _("This integration's token lacks the %(scope)s scope.") % {"scope": area})
