"""``/my/time/``: a time plan's time (used this period, left, packages, rated sessions) and buying a package at
the price shown."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from abonent.billing import actions as billing
from abonent.billing.rating.time_summary import purchases, time_packages_offered, time_subscription, time_summary
from abonent.catalog.models import ChargeMode

from ..access import own
from ..busy import page_busy_is_503
from ..forms.pay import new_key
from ..plans_data import subscriptions
from .plans import refusal


def _page(request, subscription, *, error: str = "", status: int = 200):
    context = {
        "summary": time_summary(subscription, history=30),
        "offered": list(time_packages_offered(subscription)),
        "bought": purchases(subscription, limit=20),
        "error": error,
        "now": timezone.now(),
        "form_key": new_key(),
    }
    return render(request, "portal/time.html", context, status=status)


@require_GET
def time_online(request):
    subscription = time_subscription(request.subscriber) if getattr(request, "subscriber", None) else None
    if subscription is None:
        raise Http404
    return _page(request, subscription)


@require_POST
@page_busy_is_503
def time_package(request, sid):
    """Buy the package at the price the page showed (``expected_price``): a price changed since is not charged."""
    subscription = own(subscriptions(request).filter(plan__charge_mode=ChargeMode.TIME), request, pk=sid)
    try:
        package_id = int(request.POST.get("package", ""))
        expected = Decimal(request.POST.get("expected_price", ""))
    except (ValueError, InvalidOperation):
        return _page(request, subscription, error=_("Choose a package on this page."), status=422)
    package = time_packages_offered(subscription).filter(pk=package_id).first()
    if package is None:
        return _page(request, subscription, error=_("Your plan does not offer this package."), status=422)
    if package.price != expected:
        return _page(
            request, subscription, error=_("The package's price has changed; nothing was charged."), status=409
        )
    try:
        purchase = billing.do_buy_time_package(
            subscription, package=package, acting_user=None, form_key=request.POST.get("key", "")[:200]
        )
    except ValidationError as exc:
        return _page(request, subscription, error=refusal(exc), status=422)
    messages.success(
        request,
        _("Package “%(name)s” bought: usable until %(time)s")
        % {"name": package.name, "time": date_format(timezone.localtime(purchase.expires_at), "SHORT_DATETIME_FORMAT")},
    )
    return redirect("portal:time")


urlpatterns = [
    path("time/", time_online, name="time"),
    path("time/<int:sid>/package/", time_package, name="time_package"),
]
