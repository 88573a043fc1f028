"""Prometheus metrics. Later issues add their domain metrics beside these.

With several web processes set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory shared by them);
``/metrics`` then aggregates all processes.
"""

from __future__ import annotations

import os
import time

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

HTTP_REQUESTS = Counter(
    "abonent_http_requests_total", "HTTP requests by route, method and status", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "abonent_http_request_duration_seconds",
    "HTTP request latency by route",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOGIN_FAILURES = Counter("abonent_staff_login_failures_total", "Failed staff logins", ["reason"])
TASKS_ENQUEUED = Counter("abonent_scheduler_enqueued_total", "Periodic job slots enqueued", ["job"])


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route pattern, not the raw path: /staff/subscribers/123/ must not make a series per id.
        route = match.route if match and match.route else "unmatched"
        if route == "metrics":
            return response
        HTTP_LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        return response


def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return HttpResponse(payload, content_type=CONTENT_TYPE_LATEST)
