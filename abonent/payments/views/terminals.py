"""The payment agents' protocol endpoint, ``/pay/agents/<code>/``: who is calling, within what deadline, and the
XML answer. What ``check`` and ``pay`` do is ``protocols.osmp``.

The caller is the agent only if its address is in the agent's networks AND it gives the agent's login and secret
(HTTP Basic, or ``login``/``password`` parameters for agents that cannot send Basic). Anything else gets 403 with
the same answer whether the code exists or not, so codes cannot be probed. The address is ``REMOTE_ADDR``, or the
proxy's ``X-Forwarded-For`` entry only when ``ABONENT_BEHIND_PROXY`` says a proxy sets it (core.middleware).

The database work runs in one transaction with ``statement_timeout`` and ``lock_timeout`` of
``ABONENT_AGENT_DB_TIMEOUT`` (PostgreSQL); a database that does not answer in time, or a pool with no free
connection, is answered 1 (retry later), never a 500. A ``pay`` on the fast path (``actions.fastpay``) is one
statement, its own transaction, which sets those timeouts itself; what it leaves to the intake runs as above.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time

from django.db import DatabaseError, transaction
from django.http import HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from abonent.core.middleware import client_ip

from ..actions import fastpay
from ..models.agents import secret_matches
from ..protocols import osmp
from ..selectors.agents import agent_for_protocol

logger = logging.getLogger(__name__)
CONTENT_TYPE = "text/xml; charset=utf-8"


def _respond(answer: osmp.Answer) -> HttpResponse:
    return HttpResponse(answer.render(), content_type=CONTENT_TYPE, status=answer.status)


def refused(refusal) -> HttpResponse:
    """A request the guard refuses before any view (``core.middleware.check_request``: a body that cannot be read,
    too many fields, a NUL), answered in the protocol: 200 like every answer (the result code is what the agent
    reads), nothing taken. The full stack (``api.middleware``) and the lean route (``agents_asgi``) both answer so."""
    result = osmp.Result.ACCOUNT_FORMAT if refusal.field == "account" else osmp.Result.OTHER
    text = f"{refusal.field}: {refusal.message}" if refusal.field else refusal.message
    return HttpResponse(osmp.Answer(result, str(text)[:200]).render(), content_type=CONTENT_TYPE)


def _credentials(request, params) -> tuple[str, str]:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            login, _sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "", ""
        return login, password
    return params.get("login") or "", params.get("password") or ""


def _authenticated(request, agent, params) -> bool:
    if agent is None:
        return False
    if not agent.allows(client_ip(request)):
        return False
    login, password = _credentials(request, params)
    login_ok = hmac.compare_digest(login.encode("utf-8", "replace"), agent.login.encode("utf-8", "replace"))
    return secret_matches(password, agent.secret_hash) and login_ok


@csrf_exempt
def agent_protocol(request, code: str):
    # Agents read the comment in logs, not on a screen: one language, whatever the Accept-Language.
    with translation.override("en"):
        return _agent_protocol(request, code)


def _handle(handler, agent, params, echo: str) -> osmp.Answer:
    try:
        return handler(agent, params)
    except osmp.BadParameter as exc:
        return osmp.Answer(exc.result, exc.comment, txn_id=echo)


def _agent_protocol(request, code: str):
    if request.method not in ("GET", "POST"):
        response = _respond(osmp.Answer(osmp.Result.OTHER, "Method not allowed", status=405))
        response["Allow"] = "GET, POST"
        return response
    params = request.POST.copy() if request.method == "POST" else request.GET.copy()
    if request.method == "POST":
        for key, values in request.GET.lists():
            params.setdefault(key, values[-1])
    txn_id = params.get("txn_id") or ""
    echo = txn_id if osmp._TXN_ID.match(txn_id) else ""
    command = params.get("command") or ""
    try:
        # Cached; on a miss one read by a unique index, which waits on no lock. A caller refused costs no more.
        agent = agent_for_protocol(code)
        if not _authenticated(request, agent, params):
            logger.warning("payment agent %r: refused a caller from %s", code[:40], client_ip(request))
            return _respond(osmp.Answer(osmp.Result.OTHER, _("Access denied"), txn_id=echo, status=403))
        if not agent.active:
            # A retry of a pay taken before the agent was switched off is answered as the first time was.
            repeated = osmp.repeat(agent, params)
            if repeated is not None:
                return _respond(repeated)
            return _respond(osmp.Answer(osmp.Result.FORBIDDEN, _("Payments are switched off."), txn_id=echo))
        handler = osmp.COMMANDS.get(command)
        if handler is None:
            return _respond(osmp.Answer(osmp.Result.OTHER, _("Unknown command."), txn_id=echo))
        answer = None
        started = time.monotonic()
        if command == "pay" and fastpay.fast_path_enabled(agent.channel):
            # One statement, its own transaction (autocommit): it sets the deadline itself (actions.fastpay).
            try:
                with fastpay.first_try():
                    answer = _handle(handler, agent, params, echo)
            except fastpay.Fallback:
                answer = None  # nothing written that the intake would not write: the intake takes it below
        if answer is None:
            with transaction.atomic(), fastpay.intake_only():
                # What is left of the agent's deadline after the fast path's try: one budget per request.
                fastpay.agent_deadline(spent=time.monotonic() - started)
                answer = _handle(handler, agent, params, echo)
    except DatabaseError:
        # Timed out (statement_timeout, lock_timeout), no connection within the pool's deadline, the server gone:
        # nothing was committed, and the agent will try again.
        logger.warning("payment agent %r: the database did not answer in time", code[:40], exc_info=True)
        answer = osmp.Answer(osmp.Result.TEMPORARY, _("Temporary error, try again later."), txn_id=echo)
    except Exception:
        # A fault of ours: rolled back, logged with its traceback, and the agent told to come again rather than
        # given a 500 (which it would retry the same way) or a final refusal (which would send the payer away).
        logger.exception("payment agent %r: the request failed", code[:40])
        answer = osmp.Answer(osmp.Result.TEMPORARY, _("Temporary error, try again later."), txn_id=echo)
    return _respond(answer)
