"""The token's own subscriber, and signing in and out of the app.

``login``, ``codes`` and ``password/reset`` take no token (``auth=None``): they hand one out. They refuse as the
login page does, with the same lock-out, and never tell whether a login exists: ``codes`` answers 202 for every
login, a wrong login or password is one ``invalid_credentials``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import JsonResponse
from django.utils.translation import gettext as _
from ninja import Field, Schema, Status

from abonent.api.errors import ErrorOut, error_body

from .. import actions
from ..access import own
from ..auth_data import session_rows
from ..errors import AuthRefused
from ..identify import MAX_LENGTH
from ..models import CodeChannel, PortalSession, SessionKind
from . import router

ERRORS = {401: ErrorOut, 422: ErrorOut, 429: ErrorOut}
Password = Field(..., min_length=1, max_length=actions.MAX_PASSWORD_LENGTH)


class MeOut(Schema):
    account_number: str = Field(description="The personal account number (лицевой счёт)")
    name: str
    kind: str = Field(description="individual or organization")
    status: str = Field(description="active or closed")


class LoginIn(Schema):
    login: str = Field(
        ..., min_length=1, max_length=MAX_LENGTH, description="Account number, PPPoE or hotspot login, or phone"
    )
    password: str = Password


class TokenOut(Schema):
    token: str = Field(description="Send as `Authorization: Bearer <token>`; shown once, kept only as a hash")
    expires_at: dt.datetime = Field(description="The token's absolute end; it also ends when unused for long")


class CodeIn(Schema):
    login: str = Field(..., min_length=1, max_length=MAX_LENGTH)
    channel: Literal[tuple(CodeChannel.values)] = Field(  # type: ignore[valid-type]
        "sms", description="sms: the contract's phone; email: the contract's e-mail"
    )


class AcceptedOut(Schema):
    detail: str


class ResetIn(Schema):
    login: str = Field(..., min_length=1, max_length=MAX_LENGTH)
    code: str = Field(..., min_length=1, max_length=20, description="The 6 digits from the SMS or e-mail")
    new_password: str = Password


class PasswordIn(Schema):
    current_password: str = Password
    new_password: str = Password


class SessionOut(Schema):
    id: int
    kind: str = Field(description="web (a browser) or api (an app's token)")
    device: str
    ip_address: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    current: bool = Field(description="The session of this request's token")


class EndedOut(Schema):
    sessions: int = Field(description="How many sessions ended")


def _refusal(exc: AuthRefused) -> JsonResponse:
    """The API's error shape; a lock-out says when to come back (``Retry-After``, seconds)."""
    response = JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _token(signed: actions.SignedIn) -> dict:
    return {"token": signed.secret, "expires_at": signed.session.expires_at}


@router.get("/me", response={200: MeOut, 401: ErrorOut}, summary="Who the token belongs to")
def me(request):
    subscriber = request.subscriber
    return {
        "account_number": subscriber.account_number,
        "name": subscriber.display_name,
        "kind": subscriber.kind,
        "status": subscriber.status,
    }


@router.post(
    "/login",
    auth=None,
    response={200: TokenOut, **ERRORS},
    summary="Sign in with a login and password; get a token",
    description=(
        "422 `invalid_credentials` for any wrong login or password (an unknown login reads the same), "
        "`ambiguous_login` for a phone on several contracts (send the account number); 429 `locked_out` with "
        "`Retry-After` after too many failures of the login or of the address."
    ),
)
def login(request, payload: LoginIn):
    try:
        signed = actions.do_log_in(request, login=payload.login, password=payload.password, kind=SessionKind.API)
    except AuthRefused as exc:
        return _refusal(exc)
    return _token(signed)


@router.post(
    "/codes",
    auth=None,
    response={202: AcceptedOut, 422: ErrorOut, 429: ErrorOut},
    summary="Send a one-time code to set a password (first login, forgotten password)",
    description=(
        "Always 202 whether or not the login exists or a code could be sent (the contract has no such address, "
        "one was sent a moment ago, the hourly limit). 429 `too_many_requests` when the address asked too often; "
        "422 `ambiguous_login` for a phone on several contracts."
    ),
)
def request_code(request, payload: CodeIn):
    try:
        actions.do_request_code(request, login=payload.login, channel=payload.channel)
    except AuthRefused as exc:
        return _refusal(exc)
    return Status(202, {"detail": _("If the account exists, a code has been sent to it.")})


@router.post(
    "/password/reset",
    auth=None,
    response={200: TokenOut, **ERRORS},
    summary="Set a password with a one-time code; get a token",
    description=(
        "Every other session and token of the subscriber ends. 422 `code_invalid` (wrong, or tried too often), "
        "`code_expired`, `code_used` (the last two only for the right code), `password_too_weak` (the reasons in "
        "`fields`; the code stays usable); 429 `locked_out`."
    ),
)
def reset_password(request, payload: ResetIn):
    try:
        signed = actions.do_reset_password(
            request, login=payload.login, code=payload.code, new_password=payload.new_password, kind=SessionKind.API
        )
    except AuthRefused as exc:
        return _refusal(exc)
    return _token(signed)


@router.put(
    "/password",
    response={204: None, **ERRORS},
    summary="Change the password",
    description=(
        "Needs the current one (`password_wrong`, also when the password was changed or reset meanwhile). Every "
        "other session and token ends; this token stays. 401 `session_ended` when this token ended meanwhile."
    ),
)
def change_password(request, payload: PasswordIn):
    try:
        actions.do_change_password(
            request.portal_session, current_password=payload.current_password, new_password=payload.new_password
        )
    except AuthRefused as exc:
        return _refusal(exc)
    return Status(204, None)


@router.post("/logout", response={204: None, 401: ErrorOut}, summary="End this token")
def logout(request):
    actions.do_log_out(request.portal_session)
    return Status(204, None)


@router.post(
    "/logout-everywhere",
    response={200: EndedOut, 401: ErrorOut},
    summary="End every session and token of the subscriber, this one included",
)
def logout_everywhere(request):
    return {"sessions": actions.do_log_out_everywhere(request.subscriber)}


@router.get("/sessions", response={200: list[SessionOut], 401: ErrorOut}, summary="The live sessions and tokens")
def list_sessions(request):
    return [
        {
            "id": row.session.pk,
            "kind": row.session.kind,
            "device": row.device,
            "ip_address": row.session.ip_address,
            "created_at": row.session.created_at,
            "last_seen_at": row.session.last_seen_at,
            "expires_at": row.session.expires_at,
            "current": row.current,
        }
        for row in session_rows(request.subscriber.pk, request.portal_session)
    ]


@router.delete(
    "/sessions/{session_id}",
    response={204: None, 401: ErrorOut, 404: ErrorOut},
    summary="End one session or token of the subscriber",
)
def end_session(request, session_id: int):
    session = own(PortalSession.objects.filter(revoked_at__isnull=True), request, pk=session_id)
    actions.do_end_session(session)
    return Status(204, None)
