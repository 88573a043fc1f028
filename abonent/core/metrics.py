"""Prometheus metrics: HTTP, staff logins, the scheduler; apps add their own figures with
``register_database_collector`` (core knows no domain).

With several web processes set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory shared by them);
``/metrics`` then aggregates all processes.
"""

from __future__ import annotations

import os
import time

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
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


# Collectors that read the database at scrape time, added by the apps that own the figures (network's RADIUS
# and CoA queue: abonent/network/metrics.py). Core knows none of them: an app registers its own from ready().
_DATABASE_COLLECTORS: list = []


def register_database_collector(collector):
    """Export ``collector`` (a prometheus_client custom collector) from ``/metrics``; returns it.

    Its ``describe()`` must not touch the database: registering calls it, at start-up. Kept apart from the
    per-process metrics because with ``PROMETHEUS_MULTIPROC_DIR`` the scrape builds a fresh registry, and these
    figures (the same in every process) go into it once.
    """
    REGISTRY.register(collector)
    _DATABASE_COLLECTORS.append(collector)
    return collector


def unregister_database_collector(collector) -> None:
    REGISTRY.unregister(collector)
    _DATABASE_COLLECTORS.remove(collector)


def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        # Read from the database, not from the per-process files: exported once, by whoever is scraped.
        for collector in _DATABASE_COLLECTORS:
            registry.register(collector)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return HttpResponse(payload, content_type=CONTENT_TYPE_LATEST)
