"""REST API for FreeRADIUS in front of Abonent: the endpoints its ``rlm_rest`` module calls.

Operators who keep FreeRADIUS between the NAS and Abonent load ``deploy/freeradius/`` (docs/radius.md,
"FreeRADIUS in front"). FreeRADIUS posts the request's attributes in rlm_rest's JSON shape
(``{"User-Name": {"type": "string", "value": ["ivanov"]}, …}``) and reads our answer in rlm_rest's reply shape
(``{"control:Cleartext-Password": {…}, "reply:Mikrotik-Rate-Limit": {…}}``); the HTTP status is its module code:
200 ok, 204 ok without attributes, 401 reject, 403 userlock, 404 notfound, 5xx fail.

Decisions are the ones ``abonent radius`` makes: the same ``PolicyStore.find``/``decide`` (a store narrowed to
the request's logins, ``policy.store_for_request``), the same vendor profile of the NAS, the same accounting
records through ``accounting.write_batch``. The difference: FreeRADIUS checks the password (PAP, CHAP,
MS-CHAP) with the Cleartext-Password we hand back, so a wrong password is reported afterwards (``post-auth``).

Who may call them: a RADIUS service token (``abonent create_radius_token``), bound to the NAS it speaks for
(``abonent.api.models.ApiTokenNas``). The answers hold any subscriber's PPPoE password and the writes open and
close sessions, so no person's token may (``Perm.RADIUS_SERVICE``: service accounts only, never branch-limited),
and a request naming a NAS the token is not bound to is refused (issue 11).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets as pysecrets

from django.db import DataError
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Body, Field, Router, Schema

from abonent.api.auth import TokenAuth
from abonent.api.errors import ApiError, ErrorOut
from abonent.core import clock
from abonent.staff.permissions import Perm, allowed_branch_ids, has_perm

from . import accounting
from .accounting import AcctRecord
from .acct_fields import INVALID, AcctFields, MalformedRecord, Number, read_record
from .metrics import REST_ACCOUNTING_IGNORED
from .models import AuthAttempt, AuthOutcome, Login, Nas, RejectReason
from .policy import (
    CLASS_PREFIX,
    NAS_MANAGEMENT_SERVICE_TYPES,
    PASSWORD_KINDS,
    PolicyStore,
    login_id_from_class,
    option82_key,
    store_for_request,
)
from .vendors import profile_for
from .vendors.base import DebtorSettings

logger = logging.getLogger("abonent.radius")

router = Router(tags=["radius"], auth=TokenAuth(radius=True))

# Set in FreeRADIUS's control list on an accept into the debtor redirect; the site's post-auth section
# reports such accepts back (they are kept in the subscriber card, as abonent radius keeps them).
RESTRICTED_MARK = "abonent-restricted"
RESULT_HEADER = "HTTP_X_ABONENT_RESULT"
ACCT_STATUS = {
    "start": 1,
    "stop": 2,
    "interim-update": 3,
    "alive": 3,
    "accounting-on": 7,
    "accounting-off": 8,
}
PASSWORD_ATTRIBUTES = ("User-Password", "CHAP-Password", "MS-CHAP-Response", "MS-CHAP2-Response")
# Where a request names its NAS, in the order the NAS is looked up: the address FreeRADIUS received the packet
# from (the site copies it), then what the NAS says of itself.
NAS_ADDRESS_ATTRIBUTES = ("FreeRADIUS-Client-IP-Address", "NAS-IP-Address", "NAS-IPv6-Address")


class RlmAttribute(Schema):
    """One attribute as rlm_rest sends it with ``body = 'json'``."""

    type: str = Field("", description="FreeRADIUS's type: string, integer, ipaddr, octets, date, …")
    value: list[str | int] = Field(default_factory=list, description="The values; octets as 0x-prefixed hex")


class RlmReplyAttribute(Schema):
    """One attribute of our answer, in rlm_rest's reply shape. ``do_xlat`` is always false: a password or a
    pool name containing ``%{`` must reach the NAS as it is, never be expanded by FreeRADIUS."""

    value: list[str]
    op: str = Field(description="':=' for one value, '+=' to add each of several values")
    do_xlat: bool


RlmRequest = Body[dict[str, RlmAttribute]]
RlmReply = dict[str, RlmReplyAttribute]

ERRORS = {401: ErrorOut, 403: ErrorOut, 422: ErrorOut}


# --- reading rlm_rest's attributes ------------------------------------------------------------------------


def _values(attrs: dict[str, RlmAttribute], name: str) -> list[str | int]:
    attribute = attrs.get(name)
    return list(attribute.value) if attribute is not None else []


def _text(attrs: dict[str, RlmAttribute], name: str) -> str:
    values = _values(attrs, name)
    if not values:
        return ""
    # PostgreSQL refuses NUL in text, as in abonent radius.
    return str(values[0]).replace("\x00", "\ufffd")


def _octets(value: str | int) -> bytes:
    text = str(value)
    if text[:2].lower() == "0x":
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            pass
    return text.encode()


def _integer(value: str | int) -> int | None:
    """A RADIUS integer as rlm_rest sends it: a JSON number, or a string of ASCII digits; None for anything else.

    ``str.isdigit()`` is not the test: it is true of "²" (which ``int()`` refuses) and of "٣" (which it reads
    as 3), and no NAS sends either for a four-byte integer.
    """
    if isinstance(value, int):
        return value
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _number(attrs: dict[str, RlmAttribute], name: str) -> Number:
    """The attribute's integer as sent, None when it is absent, INVALID when it is not an integer (abonent radius
    drops such a record; ``acct_fields`` decides, for the attributes the record uses)."""
    values = _values(attrs, name)
    if not values:
        return None
    value = _integer(values[0])
    return INVALID if value is None else value


def _string(attrs: dict[str, RlmAttribute], name: str) -> str:
    """The attribute's first value as sent (``acct_fields`` replaces NUL, as for abonent radius)."""
    values = _values(attrs, name)
    return str(values[0]) if values else ""


def _attribute_invalid(name: str) -> ApiError:
    message = _("%(attribute)s has an invalid value.") % {"attribute": name}
    return ApiError(
        422, "attribute_invalid", message, [{"field": name, "code": "attribute_invalid", "message": message}]
    )


def _check_radius_service(request) -> None:
    """Only a service account's token, bound to NAS, without a branch limit: the answers hold the PPPoE password
    of any subscriber, and the writes open and close anyone's sessions."""
    user = request.user
    if (
        has_perm(user, Perm.RADIUS_SERVICE)
        and getattr(request, "api_token_nas_ids", None)
        and allowed_branch_ids(user) is None
    ):
        return
    raise ApiError(
        403,
        "radius_service_required",
        _("Only a RADIUS service token bound to the NAS may call this endpoint (abonent create_radius_token)."),
    )


def _nas(request, attrs: dict[str, RlmAttribute]) -> Nas:
    """The NAS by the address FreeRADIUS received the packet from (the site copies it into
    FreeRADIUS-Client-IP-Address), else by NAS-IP-Address; it must be one the token is bound to.

    Any registered NAS the request names is checked, not only the one looked up: the fields are written by the
    caller, and a token bound to one NAS must not read passwords as, or write sessions for, another. An address
    no NAS is registered with (a NAS-IP-Address behind NAT) names none and is not refused.
    """
    named: list[str] = []
    for name in NAS_ADDRESS_ATTRIBUTES:
        try:
            named.append(str(ipaddress.ip_address(_text(attrs, name))))
        except ValueError:
            continue
    registered = {nas.ip_address: nas for nas in Nas.objects.filter(ip_address__in=named)} if named else {}
    bound = request.api_token_nas_ids
    foreign = sorted({address for address in named if address in registered and registered[address].pk not in bound})
    if foreign:
        logger.warning(
            "radius rest: token %s… named NAS %s it is not bound to", request.api_token.prefix, ", ".join(foreign)
        )
        raise ApiError(403, "nas_not_bound", _("This token does not speak for this NAS."))
    for address in named:
        nas = registered.get(address)
        if nas is not None and nas.is_active:
            return nas
    logger.warning(
        "radius rest: no active NAS for client %s / NAS-IP-Address %s",
        _text(attrs, "FreeRADIUS-Client-IP-Address") or "-",
        _text(attrs, "NAS-IP-Address") or "-",
    )
    raise ApiError(403, "unknown_nas", _("This NAS is not registered in Abonent."))


def _lookup(attrs: dict[str, RlmAttribute]) -> tuple[str, str, str]:
    def first(name: str) -> bytes:
        values = _values(attrs, name)
        return _octets(values[0]) if values else b""

    option82 = option82_key(first("DHCP-Option82"), first("ADSL-Agent-Circuit-Id"), first("ADSL-Agent-Remote-Id"))
    return _text(attrs, "User-Name"), _text(attrs, "Calling-Station-Id"), option82


def _attempt(nas: Nas, username: str, entry, outcome: str, reason: str, calling: str) -> None:
    AuthAttempt.objects.create(
        created_at=clock.now(),
        nas=nas,
        username=username[:253],
        subscriber_id=entry.subscriber_id if entry else None,
        outcome=outcome,
        reason=reason,
        calling_station_id=calling[:253],
    )


def _no_content() -> HttpResponse:
    response = HttpResponse(status=204)
    # No Content-Type: rlm_rest logs an error for a type it cannot decode, even with no body.
    del response["Content-Type"]
    return response


def _reply(pairs: list[tuple[str, str | int]]) -> dict[str, dict]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(str(value))
    return {
        name: {"value": values, "op": "+=" if len(values) > 1 else ":=", "do_xlat": False}
        for name, values in grouped.items()
    }


# --- endpoints ----------------------------------------------------------------------------------------------


@router.post(
    "/radius/authorize",
    response={200: RlmReply, 404: ErrorOut, **ERRORS},
    summary="FreeRADIUS rlm_rest: authorize an Access-Request",
    description=(
        "The request's attributes in rlm_rest's JSON body. 200: `control:Cleartext-Password` (FreeRADIUS's "
        "pap/chap/mschap check the password with it; `control:Auth-Type` Accept for IPoE logins) and the reply "
        "attributes of the NAS's vendor. 401 (`rejected`, the reason in `fields`): reject. 404 "
        "(`unknown_login`): notfound. 403 (`unknown_nas`): the packet's source is not a registered NAS; "
        "(`nas_not_bound`): the request names a NAS the token is not bound to; (`radius_service_required`): not "
        "a RADIUS service token. Needs a service account's token bound to the NAS (`abonent create_radius_token`)."
    ),
)
def authorize(request, payload: RlmRequest):
    _check_radius_service(request)
    nas = _nas(request, payload)
    username, calling, option82 = _lookup(payload)
    store = store_for_request(username, calling, option82)
    # Framed-Protocol = PPP, Service-Type = Login-User (a hotspot page): the User-Name was typed (find()).
    entry = store.find(
        username,
        calling,
        option82,
        ppp=_text(payload, "Framed-Protocol") == "PPP",
        hotspot=_text(payload, "Service-Type") == "Login-User",
    )
    if entry is None:
        _attempt(nas, username, None, AuthOutcome.REJECT, RejectReason.UNKNOWN_LOGIN, calling)
        raise ApiError(404, "unknown_login", _("No such login."))
    decision = store.decide(entry, timezone.localtime(clock.now()))
    reason = decision.reason
    if _text(payload, "Service-Type") in NAS_MANAGEMENT_SERVICE_TYPES.values():
        reason = RejectReason.NAS_MANAGEMENT
    if reason:
        _attempt(nas, username, entry, AuthOutcome.REJECT, reason, calling)
        label = RejectReason(reason).label
        raise ApiError(
            401,
            "rejected",
            _("Access is refused: %(reason)s.") % {"reason": label},
            [{"field": None, "code": str(reason), "message": str(label)}],
        )
    control: list[tuple[str, str | int]] = []
    if entry.kind in PASSWORD_KINDS:
        control.append(("Cleartext-Password", store.password_of(entry)))
    else:  # IPoE: the MAC or option 82 is the identity, there is no password to check
        control.append(("Auth-Type", "Accept"))
    # The reply abonent radius sends (server.RadiusServer._authorize), in the same order.
    profile = profile_for(nas.vendor)
    reply: list[tuple[str, str | int]] = [
        ("Session-Timeout", decision.session_timeout),
        ("Acct-Interim-Interval", nas.interim_interval),
        ("Class", "0x" + (CLASS_PREFIX + f"{entry.login_id}:{pysecrets.token_hex(6)}".encode()).hex()),
    ]
    debtor = DebtorSettings(address_list=nas.debtor_address_list, pool=nas.debtor_pool)
    if not (decision.restricted and debtor.pool):  # a debtor goes to the debtor pool, as in abonent radius
        if entry.static_ip:
            reply.append(("Framed-IP-Address", entry.static_ip))
        elif entry.pool:
            reply.append(("Framed-Pool", entry.pool))
    reply += profile.speed(decision.speed)
    if decision.restricted:
        reply += profile.debtor(debtor)
        control.append(("Tmp-String-0", RESTRICTED_MARK))
    answer = {f"control:{name}": value for name, value in _reply(control).items()}
    answer.update({f"reply:{name}": value for name, value in _reply(reply).items()})
    return answer


@router.post(
    "/radius/post-auth",
    response={204: None, **ERRORS},
    summary="FreeRADIUS rlm_rest: report the outcome FreeRADIUS decided",
    description=(
        "Called by the site's post-auth section with `X-Abonent-Result: reject` when FreeRADIUS rejected a "
        "login Abonent had authorized (a wrong password, or no password of a kind it checks), and with "
        "`restricted` for an accept into the debtor redirect. Kept as the subscriber's authentication attempts. "
        "The token and NAS rules of authorize (403 `radius_service_required`, `nas_not_bound`, `unknown_nas`)."
    ),
)
def post_auth(request, payload: RlmRequest):
    _check_radius_service(request)
    result = request.META.get(RESULT_HEADER, "").strip().lower()
    if result not in ("reject", "restricted"):
        raise ApiError(
            422, "result_invalid", _("Send the header X-Abonent-Result with the value reject or restricted.")
        )
    nas = _nas(request, payload)
    username, calling, option82 = _lookup(payload)
    entry = store_for_request(username, calling, option82, with_state=False).find(username, calling, option82)
    if result == "restricted":
        _attempt(nas, username, entry, AuthOutcome.RESTRICTED, "", calling)
    else:
        sent_password = any(name in payload for name in PASSWORD_ATTRIBUTES)
        reason = RejectReason.BAD_PASSWORD if sent_password else RejectReason.UNSUPPORTED_AUTH
        if entry is None or entry.kind not in PASSWORD_KINDS:
            reason = RejectReason.UNKNOWN_LOGIN if entry is None else RejectReason.UNSUPPORTED_AUTH
        _attempt(nas, username, entry, AuthOutcome.REJECT, reason, calling)
    return _no_content()


@router.post(
    "/radius/accounting",
    response={204: None, **ERRORS},
    summary="FreeRADIUS rlm_rest: write an Accounting-Request",
    description=(
        "The Accounting-Request's attributes in rlm_rest's JSON body; 204 once the record is committed. "
        "Start, Interim-Update, Stop, Accounting-On and Accounting-Off, written as abonent radius writes them "
        "(the session keyed by the MD5 of User-Name, Acct-Session-Id, NAS-IP-Address, NAS-Identifier, "
        "NAS-Port-Id and NAS-Port). Any other Acct-Status-Type (Tunnel-Start, Failed, none): 204 and nothing "
        "written, as abonent radius acknowledges it. 422: a record abonent radius would drop "
        "(`acct_session_id_missing`, `attribute_invalid`: an integer attribute that is neither a number nor ASCII "
        "digits, or a counter of 2^63 octets or more); FreeRADIUS then sends no Accounting-Response. The token "
        "and NAS rules of authorize (403 `radius_service_required`, `nas_not_bound`, `unknown_nas`): a token "
        "writes only its NAS's sessions."
    ),
)
def accounting_request(request, payload: RlmRequest):
    _check_radius_service(request)
    nas = _nas(request, payload)
    record = _acct_record(payload, nas)
    if record is None:
        # A status we do not record (Tunnel-*, Failed, none at all): acknowledged with nothing written, as
        # abonent radius does (``accounting_ignored``). A 422 would leave the NAS without an Accounting-Response,
        # and it would resend the record until it gives up (issue 12).
        REST_ACCOUNTING_IGNORED.labels(nas.name).inc()
        logger.debug(
            "radius rest: Acct-Status-Type %s from NAS %s acknowledged, not recorded",
            _text(payload, "Acct-Status-Type") or "-",
            nas.name,
        )
        return _no_content()
    try:
        accounting.write_batch([record])
    except (DataError, OverflowError) as exc:  # OverflowError: SQLite's driver refusing an integer over 64 bits
        # One record the database refuses is not an outage: answered (the NAS would resend it forever) and
        # logged, as abonent radius does. Any other database error is a 500: no answer, the NAS retransmits.
        logger.error("accounting: record refused by the database (%s): %r", exc, record)
    return _no_content()


def _acct_status(attrs: dict[str, RlmAttribute]) -> Number:
    """Acct-Status-Type as a number. rlm_rest sends the dictionary's name of it ("Interim-Update") or its digits;
    a name we do not record (Tunnel-Start, Failed, a vendor's) is 0 and an absent attribute None, and
    ``read_record`` leaves both unrecorded. Anything else (digits of another script, a number past four bytes)
    no NAS sends: INVALID, a malformed record, as for any integer attribute."""
    values = _values(attrs, "Acct-Status-Type")
    if not values:
        return None
    number = _integer(values[0])
    if number is None:
        name = str(values[0]).strip()
        return ACCT_STATUS.get(name.lower(), 0) if _VALUE_NAME.fullmatch(name) else INVALID
    return number if 0 <= number < 1 << 32 else INVALID


# A FreeRADIUS dictionary's VALUE name: ASCII letters, digits and punctuation, starting with a letter.
_VALUE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


def _acct_record(attrs: dict[str, RlmAttribute], nas: Nas) -> AcctRecord | None:
    """The record abonent radius makes of the same Accounting-Request (``acct_fields.read_record``), None for a
    status that is not recorded: this only takes the attributes out of rlm_rest's JSON, and says why a record
    is refused as a 422."""
    cause = _values(attrs, "Acct-Terminate-Cause")
    cause_number = _integer(cause[0]) if cause else None
    fields = AcctFields(
        status=_acct_status(attrs),
        delay=_number(attrs, "Acct-Delay-Time"),
        username=_string(attrs, "User-Name"),
        session_id=_string(attrs, "Acct-Session-Id"),
        nas_ip=_string(attrs, "NAS-IP-Address"),
        source_ip=_string(attrs, "FreeRADIUS-Client-IP-Address") or nas.ip_address,
        nas_identifier=_string(attrs, "NAS-Identifier"),
        nas_port_id=_string(attrs, "NAS-Port-Id"),
        nas_port=_number(attrs, "NAS-Port"),
        calling_station_id=_string(attrs, "Calling-Station-Id"),
        classes=[_octets(value) for value in _values(attrs, "Class")],
        framed_ip=_string(attrs, "Framed-IP-Address"),
        session_time=_number(attrs, "Acct-Session-Time"),
        input_octets=_number(attrs, "Acct-Input-Octets"),
        output_octets=_number(attrs, "Acct-Output-Octets"),
        input_gigawords=_number(attrs, "Acct-Input-Gigawords"),
        output_gigawords=_number(attrs, "Acct-Output-Gigawords"),
        # A number, or FreeRADIUS's name of it ("User-Request"), kept as it is.
        terminate_cause=(cause_number if cause_number is not None else str(cause[0])) if cause else None,
    )
    try:
        record = read_record(fields, nas_id=nas.pk, find_login=_login_finder)
    except MalformedRecord as exc:
        if exc.code == "acct_session_id_missing":
            message = _("The Accounting-Request has no Acct-Session-Id.")
            fields = [{"field": exc.attribute, "code": exc.code, "message": message}]
            raise ApiError(422, exc.code, message, fields) from exc
        raise _attribute_invalid(exc.attribute) from exc
    return record


def _login_finder(classes, username: str, calling: str):
    """The login an Accounting-Request is for, as abonent radius finds it (``PolicyStore.accounting_login``),
    from a store of the logins the request can name: its Class's, or its User-Name's and Calling-Station-Id's."""
    store = store_for_request(username, calling, with_state=False)
    login_id = login_id_from_class(classes)
    if login_id is not None and login_id not in store.by_login_id:
        store = PolicyStore.for_subscribers(
            Login.objects.filter(pk=login_id).values_list("subscriber_id", flat=True), with_state=False
        )
    return store.accounting_login(classes, username, calling)
