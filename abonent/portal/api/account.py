"""The token's own subscriber, and signing in and out of the app (the auth area adds login, codes, logout)."""

from __future__ import annotations

from ninja import Field, Schema

from abonent.api.errors import ErrorOut

from . import router


class MeOut(Schema):
    account_number: str = Field(description="The personal account number (лицевой счёт)")
    name: str
    kind: str = Field(description="individual or organization")
    status: str = Field(description="active or closed")


@router.get("/me", response={200: MeOut, 401: ErrorOut}, summary="Who the token belongs to")
def me(request):
    subscriber = request.subscriber
    return {
        "account_number": subscriber.account_number,
        "name": subscriber.display_name,
        "kind": subscriber.kind,
        "status": subscriber.status,
    }
