"""A deadline on the database waits of the portal's money writes (plan change, freeze, unfreeze, promised payment,
turbo), so that a row held by the billing run, a statement import or another request answers "busy, nothing was
done, try again" in a few seconds (503 ``busy``, the page likewise) instead of a request that hangs for as long as
the other transaction does. ``core.deadlines`` sets the deadline (``SET LOCAL lock_timeout`` on PostgreSQL);
SQLite waits at most its own busy timeout."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, transaction
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from abonent.api.errors import ApiError
from abonent.core.deadlines import db_deadline, is_deadline

logger = logging.getLogger(__name__)

# Seconds a portal write waits for a row (or an Idempotency-Key) another transaction holds, and the most one of
# its statements may take (a plan change's catch-up runs the billing of one subscription).
LOCK_S = 3
STATEMENT_S = 15
RETRY_AFTER_S = 5


@contextmanager
def money_write() -> Iterator[None]:
    """One transaction (or a savepoint of the caller's) whose lock waits and statements have the portal's
    deadlines, unless the caller set them already."""
    with transaction.atomic():
        db_deadline(lock=LOCK_S, statement=STATEMENT_S, unless_set=True)
        yield


def _busy_message() -> str:
    return _("Your account is busy with another operation right now; nothing was done. Try again in a few seconds.")


def api_busy_is_503(handler):
    """An API write run under ``money_write`` (from before its Idempotency-Key is taken); a deadline passed is 503
    ``busy`` with ``Retry-After``: nothing was written, and a retry with the same key may well succeed."""

    @functools.wraps(handler)
    def wrapped(request, *args, **kwargs):
        try:
            with money_write():
                return handler(request, *args, **kwargs)
        except OperationalError as exc:
            if not is_deadline(exc):
                raise
            logger.warning("%s %s: the database was busy past the deadline", request.method, request.path)
            raise ApiError(503, "busy", _busy_message()) from exc

    return wrapped


def _back(request) -> str:
    """Where "Try again" leads: the page itself for a GET, else the page the form was on (this site's only)."""
    if request.method == "GET":
        return request.get_full_path()
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}, require_https=False):
        return referer
    return reverse("portal:home")


def page_busy_is_503(view):
    """A page whose write ran past the deadline answers a page saying nothing was done, with 503."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            with money_write():
                return view(request, *args, **kwargs)
        except OperationalError as exc:
            if not is_deadline(exc):
                raise
            logger.warning("%s %s: the database was busy past the deadline", request.method, request.path)
            context = {"message": _busy_message(), "back": _back(request)}
            response = render(request, "portal/busy.html", context, status=503)
            response["Retry-After"] = str(RETRY_AFTER_S)
            return response

    return wrapped
