"""The integrations pages of the staff console (administrator: ``Perm.INTEGRATION_MANAGE``): endpoints and their
secrets, integration tokens, the delivery log with its attempts and manual redelivery. A secret or a token is shown
once, in the answer to the POST that made it (never put in the session, the URL or a message)."""

from __future__ import annotations

import datetime as dt
import json
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.core.listing import keyset_page, query_without
from abonent.staff.permissions import Perm, allowed_branch_ids, require_perm

from . import actions, selectors
from .forms import DeliveryFilterForm, EndpointForm, TokenForm
from .models import Delivery, DeliveryStatus, Endpoint, IntegrationToken
from .sending import MAX_ATTEMPTS

PAGE = 50


def integration_admin(view):
    """``Perm.INTEGRATION_MANAGE`` and no branch limit: an integration's events and tokens reach every branch."""

    @require_perm(Perm.INTEGRATION_MANAGE)
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if allowed_branch_ids(request.user) is not None:
            raise PermissionDenied(_("Integrations reach every branch: a branch-limited user cannot manage them."))
        return view(request, *args, **kwargs)

    return wrapped


@integration_admin
def endpoint_list(request):
    return render(request, "webhooks/endpoint_list.html", {"endpoints": selectors.endpoints_with_counts()})


def _data(form: EndpointForm) -> actions.EndpointData:
    return actions.EndpointData(
        name=form.cleaned_data["name"],
        url=form.cleaned_data["url"],
        event_types=form.cleaned_data["event_types"],
        is_active=form.cleaned_data["is_active"],
    )


@integration_admin
def endpoint_create(request):
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = actions.do_create_endpoint(_data(form), acting_user=request.user)
        except ValidationError as error:
            apply_action_errors(form, error)
        else:
            return _detail(request, endpoint, secret=secret, status=201)
    return render(request, "webhooks/endpoint_form.html", {"form": form}, status=422 if form.errors else 200)


def _detail(request, endpoint: Endpoint, *, form=None, token_form=None, secret="", token="", status=200):
    initial = {
        "name": endpoint.name,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "is_active": endpoint.is_active,
    }
    context = {
        "endpoint": endpoint,
        "form": form or EndpointForm(initial=initial),
        "token_form": token_form or TokenForm(),
        "tokens": selectors.tokens_of(endpoint),
        "secret": secret,
        "token": token,
        "recent": selectors.filtered_deliveries(endpoint=endpoint).order_by("-created_at", "-id")[:10],
    }
    return render(request, "webhooks/endpoint_detail.html", context, status=status)


@integration_admin
def endpoint_detail(request, pk: int):
    endpoint = get_object_or_404(Endpoint, pk=pk)
    if request.method != "POST":
        return _detail(request, endpoint)
    form = EndpointForm(request.POST)
    if form.is_valid():
        try:
            actions.do_update_endpoint(endpoint, _data(form), acting_user=request.user)
        except ValidationError as error:
            apply_action_errors(form, error)
        else:
            messages.success(request, _("Integration saved."))
            return redirect("webhooks:endpoint", pk=endpoint.pk)
    return _detail(request, endpoint, form=form, status=422)


@require_POST
@integration_admin
def endpoint_rotate_secret(request, pk: int):
    endpoint = get_object_or_404(Endpoint, pk=pk)
    endpoint, secret = actions.do_rotate_endpoint_secret(endpoint, acting_user=request.user)
    return _detail(request, endpoint, secret=secret)


@require_POST
@integration_admin
def token_create(request, pk: int):
    endpoint = get_object_or_404(Endpoint, pk=pk)
    form = TokenForm(request.POST)
    if form.is_valid():
        expires_on = form.cleaned_data.get("expires_on")
        expires_at = (
            timezone.make_aware(dt.datetime.combine(expires_on, dt.time.max)) if expires_on is not None else None
        )
        try:
            _integration, plaintext = actions.do_create_integration_token(
                endpoint,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=expires_at,
                acting_user=request.user,
            )
        except ValidationError as error:
            apply_action_errors(form, error, {"expires_at": "expires_on"})
        else:
            return _detail(request, endpoint, token=plaintext, status=201)
    return _detail(request, endpoint, token_form=form, status=422)


@require_POST
@integration_admin
def token_revoke(request, pk: int):
    integration = get_object_or_404(IntegrationToken, pk=pk)
    actions.do_revoke_integration_token(integration, acting_user=request.user)
    messages.success(request, _("Token revoked."))
    return redirect("webhooks:endpoint", pk=integration.endpoint_id)


@integration_admin
def delivery_list(request):
    form = DeliveryFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    rows = selectors.filtered_deliveries(
        endpoint=data.get("endpoint"),
        status=data.get("status") or "",
        event_type=data.get("type") or "",
        event_id=data.get("event"),
    )
    page = keyset_page(rows, ordering=["-created_at", "-id"], cursor=request.GET.get("cursor"), size=PAGE)
    context = {
        "form": form,
        "page": page,
        "query_string": query_without(request.GET, "cursor"),
        "max_attempts": MAX_ATTEMPTS,
    }
    return render(request, "webhooks/delivery_list.html", context, status=422 if form.errors else 200)


@integration_admin
def delivery_detail(request, pk: int):
    delivery = get_object_or_404(Delivery.objects.select_related("endpoint", "event"), pk=pk)
    context = {
        "delivery": delivery,
        "attempts": selectors.attempts_of(delivery),
        "payload": json.dumps(delivery.event.envelope(), ensure_ascii=False, indent=2, sort_keys=True),
        "pending": delivery.status == DeliveryStatus.PENDING,
    }
    return render(request, "webhooks/delivery_detail.html", context)


@require_POST
@integration_admin
def delivery_redeliver(request, pk: int):
    delivery = get_object_or_404(Delivery, pk=pk)
    actions.do_redeliver(delivery, acting_user=request.user)
    messages.success(request, _("Redelivery queued: the same event goes to the receiver again."))
    return redirect("webhooks:delivery", pk=delivery.pk)
