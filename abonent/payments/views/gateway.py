"""A gateway's notifications (public, under ``/pay/``) and the console's read-only Gateways page."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from abonent.core.company import fiscal_inn_mismatch
from abonent.core.middleware import client_ip
from abonent.staff.permissions import Perm, require_perm

from .. import gateways
from ..actions import do_handle_notification
from ..selectors import gateway as selectors

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def notification(request, provider: str):
    """``POST /pay/<provider>/notifications``: the provider's notice. The caller is authenticated by the gateway
    (its source networks; YooKassa signs nothing). The client address follows the deployment's proxy rules
    (``core.middleware.client_ip``: uvicorn's trusted proxies, ``ABONENT_BEHIND_PROXY``)."""
    if provider not in gateways.registered():
        raise Http404
    try:
        answer = do_handle_notification(
            provider, body=request.body, headers=dict(request.headers), remote_addr=client_ip(request) or ""
        )
    except DatabaseError:
        # Not stored, or not handled: the provider must deliver it again.
        logger.exception("%s notice could not be handled: the database failed", provider)
        return HttpResponse(status=503)
    return HttpResponse(answer.body, status=answer.status, content_type="text/plain; charset=utf-8")


@require_perm(Perm.PAYMENT_SETTINGS)
def gateways_page(request):
    """Which gateways are configured (never their secrets), recent notices with outcomes, pending checkouts."""
    return render(
        request,
        "payments/gateways_page.html",
        {
            "gateways": selectors.gateway_overview(),
            "events": selectors.recent_provider_events(),
            "pending": selectors.pending_checkouts(request.user),
            "notification_url": request.build_absolute_uri(reverse("pay:gateway_notification", args=["yookassa"])),
            "sync_after": settings.ABONENT_GATEWAY_SYNC_AFTER_MINUTES,
            "fiscal_inn_mismatch": fiscal_inn_mismatch(),
        },
    )
