"""REST API for subscribers: ``/api/v1/subscribers``. Handlers parse, check, call actions/selectors."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from abonent.api.errors import ApiError, ErrorOut
from abonent.api.idempotency import idempotent
from abonent.staff.permissions import Perm, check_branch, check_perm, has_perm

from . import actions, selectors
from .models import Subscriber

router = Router(tags=["subscribers"])


class ContactIn(Schema):
    kind: Literal["phone", "email"]
    value: str = Field(..., max_length=254)
    is_primary: bool = False
    comment: str = Field("", max_length=100)


class ContactOut(Schema):
    id: int
    kind: str
    value: str
    is_primary: bool
    comment: str


class AddressIn(Schema):
    kind: Literal["service", "registration", "postal"] = "service"
    city: str = Field(..., max_length=100)
    street: str = Field("", max_length=150)
    house: str = Field(..., max_length=20)
    building: str = Field("", max_length=20)
    apartment: str = Field("", max_length=20)
    postal_code: str = Field("", max_length=10)
    entrance: str = Field("", max_length=10)
    floor: str = Field("", max_length=10)
    comment: str = Field("", max_length=255)


class AddressOut(AddressIn):
    id: int
    text: str


class PersonalData(Schema):
    birth_date: dt.date | None
    passport_series: str
    passport_number: str
    passport_issued_by: str
    passport_issued_on: dt.date | None


class SubscriberOut(Schema):
    id: int
    account_number: str
    legacy_account: str | None = Field(description="The account number in the billing the ISP migrated from")
    kind: str
    status: str
    display_name: str
    last_name: str
    first_name: str
    middle_name: str
    organization_name: str
    inn: str
    kpp: str
    branch_id: int
    group_ids: list[int]
    contract_numbers: list[str]
    consent_personal_data: bool
    consent_marketing: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    contacts: list[ContactOut]
    addresses: list[AddressOut]
    personal: PersonalData | None = Field(None, description="Only for tokens whose role may see personal data")


class SubscriberListItem(Schema):
    id: int
    account_number: str
    legacy_account: str | None
    kind: str
    status: str
    display_name: str
    branch_id: int
    phone: str | None


class SubscriberPage(Schema):
    items: list[SubscriberListItem]
    page: int
    has_next: bool


class SubscriberCreateIn(Schema):
    branch_id: int
    kind: Literal["individual", "organization"] = "individual"
    last_name: str = Field("", max_length=100)
    first_name: str = Field("", max_length=100)
    middle_name: str = Field("", max_length=100)
    birth_date: dt.date | None = None
    passport_series: str = Field("", max_length=5)
    passport_number: str = Field("", max_length=7)
    passport_issued_by: str = Field("", max_length=255)
    passport_issued_on: dt.date | None = None
    organization_name: str = Field("", max_length=255)
    inn: str = Field("", max_length=12)
    kpp: str = Field("", max_length=9)
    account_number: str = Field("", max_length=20, description="Empty: the next number is assigned")
    # Longer than the column on purpose: the action refuses 21 digits with its own field code.
    legacy_account: str = Field(
        "", max_length=64, description="The old system's account number: 1-20 digits 0-9, kept exactly as given"
    )
    contract_number: str = Field("", max_length=50, description="Empty: the account number")
    contract_signed_on: dt.date | None = None
    consent_personal_data: bool = False
    consent_marketing: bool = False
    group_ids: list[int] = []
    contacts: list[ContactIn] = []
    addresses: list[AddressIn] = []


class SubscriberUpdateIn(Schema):
    """Only the fields sent are changed. Only the two dates may be sent as ``null`` (to clear them)."""

    # The defaults are never stored: fields left out are dropped with ``exclude_unset``. The types are
    # not optional, so an explicit ``null`` is a 422, not a blank name or a crash deep in the action.
    branch_id: int = None
    kind: Literal["individual", "organization"] = None
    last_name: str = Field(None, max_length=100)
    first_name: str = Field(None, max_length=100)
    middle_name: str = Field(None, max_length=100)
    birth_date: dt.date | None = None
    passport_series: str = Field(None, max_length=5)
    passport_number: str = Field(None, max_length=7)
    passport_issued_by: str = Field(None, max_length=255)
    passport_issued_on: dt.date | None = None
    organization_name: str = Field(None, max_length=255)
    inn: str = Field(None, max_length=12)
    kpp: str = Field(None, max_length=9)
    legacy_account: str | None = Field(None, max_length=64, description="null or an empty string clears it")
    consent_personal_data: bool = None
    consent_marketing: bool = None
    group_ids: list[int] = None
    reason: str = Field("", max_length=255)


class CloseIn(Schema):
    reason: str = Field(..., min_length=1, max_length=1000)


class SearchParams(Schema):
    q: str = Field("", max_length=200, description="Account number, name, phone, address, MAC, serial…")
    branch_id: int | None = None
    status: Literal["active", "closed"] | None = None
    kind: Literal["individual", "organization"] | None = None
    group_id: int | None = None
    page: int = Field(1, ge=1, le=10000)


def _out(request, subscriber: Subscriber) -> dict:
    subscriber = Subscriber.objects.prefetch_related("contacts", "addresses", "contracts", "groups").get(
        pk=subscriber.pk
    )
    data = {
        name: getattr(subscriber, name)
        for name in (
            "id",
            "account_number",
            "legacy_account",
            "kind",
            "status",
            "display_name",
            "last_name",
            "first_name",
            "middle_name",
            "organization_name",
            "inn",
            "kpp",
            "branch_id",
            "consent_personal_data",
            "consent_marketing",
            "created_at",
            "updated_at",
            "closed_at",
        )
    }
    data["group_ids"] = [g.pk for g in subscriber.groups.all()]
    data["contract_numbers"] = [c.number for c in subscriber.contracts.all()]
    data["contacts"] = [ContactOut.from_orm(c).model_dump() for c in subscriber.contacts.all()]
    data["addresses"] = [
        {**AddressIn.from_orm(a).model_dump(), "id": a.pk, "text": a.as_text()} for a in subscriber.addresses.all()
    ]
    if has_perm(request.user, Perm.SUBSCRIBER_VIEW_PERSONAL):
        data["personal"] = {name: getattr(subscriber, name) for name in PersonalData.model_fields}
    else:
        data["personal"] = None
        data["inn"] = data["inn"] if subscriber.is_organization else ""
    return data


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


@router.get("/subscribers", response={200: SubscriberPage, **ERRORS}, summary="Search and list subscribers")
def list_subscribers(request, params: Query[SearchParams]):
    check_perm(request.user, Perm.SUBSCRIBER_VIEW)
    filters = selectors.SubscriberFilters(
        query=params.q,
        branch_id=params.branch_id,
        status=params.status or "",
        kind=params.kind or "",
        group_id=params.group_id,
    )
    page = selectors.search_subscribers(request.user, filters, page=params.page)
    if page.query_too_short:
        message = _("Type at least 3 characters to search.")
        raise ApiError(422, "query_too_short", message, [{"field": "q", "code": "query_too_short", "message": message}])
    return {
        "items": [
            {
                "id": s.pk,
                "account_number": s.account_number,
                "legacy_account": s.legacy_account,
                "kind": s.kind,
                "status": s.status,
                "display_name": s.display_name,
                "branch_id": s.branch_id,
                "phone": s.phones[0].value if s.phones else None,
            }
            for s in page.results
        ],
        "page": page.page,
        "has_next": page.has_next,
    }


# The writes below check access in their actions; ``idempotent`` runs these same checks before it replays a
# stored answer (the replay skips the action), so a user who lost the right gets 403/404, not the answer.
def _may_create(request, payload: SubscriberCreateIn, **_kwargs) -> None:
    check_perm(request.user, Perm.SUBSCRIBER_CREATE)
    check_branch(request.user, payload.branch_id)


def _may_change(perm: Perm):
    def access(request, subscriber_id: int, **_kwargs) -> None:
        selectors.get_subscriber(request.user, subscriber_id)
        check_perm(request.user, perm)

    return access


@router.post("/subscribers", response={201: SubscriberOut, 409: ErrorOut, **ERRORS}, summary="Create a subscriber")
@idempotent(201, access=_may_create)
def create_subscriber(request, payload: SubscriberCreateIn):
    data = payload.model_dump()
    data["contacts"] = [actions.ContactData(**c) for c in data["contacts"]]
    data["addresses"] = [actions.AddressData(**a) for a in data["addresses"]]
    subscriber = actions.do_create_subscriber(actions.SubscriberData(**data), acting_user=request.user)
    return _out(request, subscriber)


@router.get(
    "/subscribers/by-account/{account_number}",
    response={200: SubscriberOut, **ERRORS},
    summary="Find a subscriber by personal account number, ours or the old system's",
)
def get_by_account(request, account_number: str):
    check_perm(request.user, Perm.SUBSCRIBER_VIEW)
    return _out(request, selectors.get_subscriber_by_account(request.user, account_number))


@router.get("/subscribers/{subscriber_id}", response={200: SubscriberOut, **ERRORS}, summary="Get a subscriber")
def get_subscriber(request, subscriber_id: int):
    check_perm(request.user, Perm.SUBSCRIBER_VIEW)
    return _out(request, selectors.get_subscriber(request.user, subscriber_id))


@router.patch("/subscribers/{subscriber_id}", response={200: SubscriberOut, **ERRORS}, summary="Change a subscriber")
def update_subscriber(request, subscriber_id: int, payload: SubscriberUpdateIn):
    subscriber = selectors.get_subscriber(request.user, subscriber_id)
    changes = payload.model_dump(exclude_unset=True)
    reason = changes.pop("reason", "")
    subscriber = actions.do_update_subscriber(subscriber, changes=changes, acting_user=request.user, reason=reason)
    return _out(request, subscriber)


@router.post(
    "/subscribers/{subscriber_id}/close",
    response={200: SubscriberOut, 409: ErrorOut, **ERRORS},
    summary="Close a subscriber",
)
@idempotent(200, access=_may_change(Perm.SUBSCRIBER_CLOSE))
def close_subscriber(request, subscriber_id: int, payload: CloseIn):
    subscriber = selectors.get_subscriber(request.user, subscriber_id)
    return _out(request, actions.do_close_subscriber(subscriber, reason=payload.reason, acting_user=request.user))


@router.post(
    "/subscribers/{subscriber_id}/contacts",
    response={201: ContactOut, 409: ErrorOut, **ERRORS},
    summary="Add a phone or email",
)
@idempotent(201, access=_may_change(Perm.SUBSCRIBER_EDIT))
def add_contact(request, subscriber_id: int, payload: ContactIn):
    subscriber = selectors.get_subscriber(request.user, subscriber_id)
    contact = actions.do_add_contact(subscriber, acting_user=request.user, **payload.model_dump())
    return ContactOut.from_orm(contact)


@router.delete(
    "/subscribers/{subscriber_id}/contacts/{contact_id}",
    response={204: None, **ERRORS},
    summary="Remove a phone or email",
)
def remove_contact(request, subscriber_id: int, contact_id: int):
    subscriber = selectors.get_subscriber(request.user, subscriber_id)
    actions.do_remove_contact(get_object_or_404(subscriber.contacts, pk=contact_id), acting_user=request.user)
    return Status(204, None)


@router.post(
    "/subscribers/{subscriber_id}/addresses",
    response={201: AddressOut, 409: ErrorOut, **ERRORS},
    summary="Add an address",
)
@idempotent(201, access=_may_change(Perm.SUBSCRIBER_EDIT))
def add_address(request, subscriber_id: int, payload: AddressIn):
    subscriber = selectors.get_subscriber(request.user, subscriber_id)
    address = actions.do_add_address(
        subscriber, data=actions.AddressData(**payload.model_dump()), acting_user=request.user
    )
    return {**AddressIn.from_orm(address).model_dump(), "id": address.pk, "text": address.as_text()}
