"""The portal's JSON API under ``/api/v1/my/``, for a mobile app: the subscriber's own data and actions.

Authenticated by a subscriber's token (``POST /api/v1/my/login`` hands one out), never by a staff token; every
route reads and writes only the token's subscriber, so another subscriber's ids answer 404. Writes that move
money (a payment, a plan change, a freeze, a promised payment, a turbo) require ``Idempotency-Key``.
"""

from ninja import Router

from .auth import SubscriberTokenAuth

router = Router(tags=["Subscriber portal"], auth=SubscriberTokenAuth())

# Each area adds its routes to ``router``.
from . import account, bonuses, documents, home, payments, plans, profile, requests, vouchers  # noqa: E402,F401
