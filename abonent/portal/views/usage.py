"""``/my/usage/``: the current period's traffic against the plan's included volume (and what going over it will
cost at the period's end); traffic per day of a month (``?month=YYYY-MM``) and per month of the last year, as
charts drawn by ``usage.js`` from a JSON block and as tables; time online per day; the sessions, a page at a time
(``?before=<session id>``). A month that is not one is a 400 showing this month, never a 500."""

from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from abonent.core import clock
from abonent.network.models import Session

from .. import usage_data
from ..access import own


def usage(request):
    today = timezone.localdate(clock.now())
    status, error = 200, ""
    try:
        month = usage_data.parse_month(request.GET.get("month"), today)
    except ValidationError as exc:
        month, status, error = today.replace(day=1), 400, exc.message_dict["month"][0]
    before_id = request.GET.get("before")
    before = own(Session.objects, request, pk=before_id) if before_id else None
    subscriber_id = request.subscriber.pk
    month_usage = usage_data.month_usage(subscriber_id, month)
    months = usage_data.months_usage(subscriber_id)
    context = {
        "error": error,
        "month": month_usage,
        "months": months,
        "chart": usage_data.chart_data(month_usage, months),
        "sessions": usage_data.sessions_page(subscriber_id, before=before),
        "paged": before is not None,
        "month_param": month.strftime("%Y-%m"),
        "quotas": _quotas(request.subscriber),
    }
    return render(request, "portal/usage.html", context, status=status)


def _quotas(subscriber) -> list:
    """The current period's traffic of each current subscription whose plan counts it (an included volume)."""
    from abonent.billing.models import Subscription, SubscriptionStatus
    from abonent.billing.rating.estimate import usage_estimate

    current = (
        Subscription.objects.filter(subscriber=subscriber, plan__included_bytes__isnull=False)
        .exclude(status=SubscriptionStatus.TERMINATED)
        .select_related("plan")
        .order_by("started_on", "id")
    )
    return [e for e in (usage_estimate(s) for s in current) if e is not None]


urlpatterns = [path("usage/", usage, name="usage")]
