"""Creating, changing, closing and reopening a subscriber (with the contract and account number)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events, sequences
from abonent.core.models import Branch
from abonent.staff.permissions import Perm, check_branch, check_perm

from ..models import (
    Address,
    ContactKind,
    ContactPoint,
    Contract,
    ContractStatus,
    Subscriber,
    SubscriberGroup,
    SubscriberStatus,
)
from ..search import name_key
from ..validators import (
    account_serial_start,
    make_account_number,
    validate_account_number,
)
from .common import (
    ACCOUNT_SEQUENCE,
    AUDITED_FIELDS,
    PROFILE_FIELDS,
    ContactData,
    SubscriberData,
    _check_account_number_free,
    _check_contract_number_free,
    _lock,
    _save_new,
    clean_address,
    clean_contact,
    clean_profile,
    display_name_of,
    refresh_search_text,
)
from .legacy import (
    check_legacy_account_free,
    clean_legacy_account,
    hold_account_numbers,
    save_with_legacy_account,
)

# --- subscriber -------------------------------------------------------------------------------------


def _account_taken(number: str) -> ValidationError:
    return ValidationError(
        {
            "account_number": ValidationError(
                _("Account number %(number)s is already used by another subscriber.") % {"number": number},
                code="account_number_taken",
            )
        }
    )


def allocate_account_number() -> str:
    """The next number of ours, passing over any that a subscriber holds as its old account number.
    ``sequences.allocate`` holds the sequence's row lock to the end of the transaction, and an old number shaped
    like ours is set under the same lock (actions.legacy), so the check below cannot miss one set concurrently."""
    while True:
        number = make_account_number(sequences.allocate(ACCOUNT_SEQUENCE, start=account_serial_start())[0])
        if not Subscriber.objects.filter(legacy_account=number).exists():
            return number


@transaction.atomic
def do_create_subscriber(data: SubscriberData, *, acting_user) -> Subscriber:
    """``acting_user=None`` is the system itself (a Wi-Fi card activated on the hotspot page: vouchers.wifi)."""
    if acting_user is not None:
        check_perm(acting_user, Perm.SUBSCRIBER_CREATE)
    errors: dict[str, list] = {}
    try:
        profile = clean_profile({name: getattr(data, name) for name in PROFILE_FIELDS})
    except ValidationError as exc:
        errors.update(exc.error_dict)
        profile = {}

    branch = Branch.objects.filter(pk=data.branch_id, is_active=True).first()
    if branch is None:
        errors["branch_id"] = [ValidationError(_("Choose an existing branch."), code="branch_invalid")]
    elif acting_user is not None:
        check_branch(acting_user, branch.pk)

    account_number = (data.account_number or "").strip()
    if account_number:
        try:
            validate_account_number(account_number)
            _check_account_number_free(account_number)
        except ValidationError as exc:
            errors.setdefault("account_number", []).extend(
                exc.error_dict["account_number"] if hasattr(exc, "error_dict") else exc.error_list
            )

    legacy_account = None
    try:
        legacy_account = clean_legacy_account(data.legacy_account)
    except ValidationError as exc:
        errors.update(exc.error_dict)

    contract_number = (data.contract_number or "").strip()
    if contract_number:
        try:
            _check_contract_number_free(contract_number)
        except ValidationError as exc:
            errors.update(exc.error_dict)

    contacts, addresses = [], []
    for index, contact in enumerate(data.contacts):
        try:
            contacts.append(
                ContactData(
                    contact.kind,
                    clean_contact(contact.kind, contact.value),
                    contact.is_primary,
                    contact.comment.strip(),
                )
            )
        except ValidationError as exc:
            errors.setdefault(f"contacts.{index}.value", []).extend(exc.error_list)
    for index, address in enumerate(data.addresses):
        try:
            addresses.append(clean_address(address))
        except ValidationError as exc:
            for name, errs in exc.error_dict.items():
                errors.setdefault(f"addresses.{index}.{name}", []).extend(errs)
    groups = list(SubscriberGroup.objects.filter(pk__in=data.group_ids))
    if len(groups) != len(set(data.group_ids)):
        errors["group_ids"] = [ValidationError(_("Unknown subscriber group."), code="group_invalid")]
    if errors:
        raise ValidationError(errors)

    if not account_number:
        account_number = allocate_account_number()
    else:
        # Under the lock that old account numbers shaped like ours are set under (actions.legacy): one of them
        # set a moment ago is seen here, and one set next sees this subscriber.
        hold_account_numbers()
        if Subscriber.objects.filter(legacy_account=account_number).exists():
            raise _account_taken(account_number)
        # A number typed by hand (a migrated account) must never be handed out again by the sequence.
        sequences.ensure_at_least(ACCOUNT_SEQUENCE, int(account_number[:-1]))

    if legacy_account is not None:
        check_legacy_account_free(legacy_account, subscriber_pk=None, account_number=account_number)

    moment = clock.now()
    subscriber = Subscriber(
        account_number=account_number,
        legacy_account=legacy_account,
        branch=branch,
        display_name=display_name_of(profile),
        name_key=name_key(display_name_of(profile)),
        consent_personal_data=data.consent_personal_data,
        consent_personal_data_at=moment if data.consent_personal_data else None,
        consent_marketing=data.consent_marketing,
        consent_marketing_at=moment if data.consent_marketing else None,
        created_at=moment,
        updated_at=moment,
        **profile,
    )
    if legacy_account is not None:
        try:
            save_with_legacy_account(subscriber, force_insert=True)
        except IntegrityError as exc:
            raise _account_taken(account_number) from exc
    else:
        _save_new(subscriber, on_conflict=_account_taken(account_number))
    subscriber.groups.set(groups)

    contract = Contract(
        subscriber=subscriber,
        number=contract_number or account_number,
        signed_on=data.contract_signed_on or clock.today(),
    )
    _save_new(
        contract,
        on_conflict=ValidationError(
            {
                "contract_number": ValidationError(
                    _("Contract number %(number)s is already used.") % {"number": contract.number},
                    code="contract_number_taken",
                )
            }
        ),
    )
    if contacts and not any(c.is_primary for c in contacts if c.kind == ContactKind.PHONE):
        first_phone = next((c for c in contacts if c.kind == ContactKind.PHONE), None)
        if first_phone:
            first_phone.is_primary = True
    seen = set()
    for contact in contacts:
        if (contact.kind, contact.value) in seen:
            continue
        seen.add((contact.kind, contact.value))
        ContactPoint.objects.create(subscriber=subscriber, **asdict(contact))
    for address in addresses:
        Address.objects.create(subscriber=subscriber, **asdict(address))

    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="subscriber.created",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        after={
            **audit.snapshot(subscriber, AUDITED_FIELDS),
            "contract": contract.number,
            "contacts": [c.value for c in contacts],
            "addresses": [a.city + ", " + a.street + " " + a.house for a in addresses],
            "groups": [g.pk for g in groups],
        },
    )
    events.emit("subscriber.created", subscriber_id=subscriber.pk)
    return subscriber


@transaction.atomic
def do_update_subscriber(subscriber: Subscriber, *, changes: dict, acting_user, reason: str = "") -> Subscriber:
    """Change profile fields, branch, consents or groups. Only the keys given are touched. ``acting_user=None``: the
    system, or the subscriber in the portal (which offers it its own consents only)."""
    if acting_user is not None:
        check_perm(acting_user, Perm.SUBSCRIBER_EDIT)
    subscriber = _lock(subscriber)
    if acting_user is not None:
        check_branch(acting_user, subscriber.branch_id)
    allowed = {
        *PROFILE_FIELDS,
        "legacy_account",
        "branch_id",
        "consent_personal_data",
        "consent_marketing",
        "group_ids",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(
            _("These fields cannot be changed: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            code="field_not_editable",
        )

    before = audit.snapshot(subscriber, AUDITED_FIELDS)
    before_groups = sorted(subscriber.groups.values_list("pk", flat=True))
    profile = clean_profile({name: changes.get(name, getattr(subscriber, name)) for name in PROFILE_FIELDS})
    for name, value in profile.items():
        setattr(subscriber, name, value)
    subscriber.display_name = display_name_of(profile)
    subscriber.name_key = name_key(subscriber.display_name)

    if "branch_id" in changes and changes["branch_id"] != subscriber.branch_id:
        if not Branch.objects.filter(pk=changes["branch_id"], is_active=True).exists():
            raise ValidationError(
                {"branch_id": ValidationError(_("Choose an existing branch."), code="branch_invalid")}
            )
        check_branch(acting_user, changes["branch_id"])
        subscriber.branch_id = changes["branch_id"]

    if "legacy_account" in changes:
        legacy_account = clean_legacy_account(changes["legacy_account"])
        if legacy_account is not None and legacy_account != subscriber.legacy_account:
            check_legacy_account_free(
                legacy_account, subscriber_pk=subscriber.pk, account_number=subscriber.account_number
            )
        subscriber.legacy_account = legacy_account

    moment = clock.now()
    for consent in ("consent_personal_data", "consent_marketing"):
        if consent in changes and bool(changes[consent]) != getattr(subscriber, consent):
            setattr(subscriber, consent, bool(changes[consent]))
            setattr(subscriber, f"{consent}_at", moment)

    groups_after = before_groups
    if "group_ids" in changes:
        groups = list(SubscriberGroup.objects.filter(pk__in=changes["group_ids"]))
        if len(groups) != len(set(changes["group_ids"])):
            raise ValidationError({"group_ids": ValidationError(_("Unknown subscriber group."), code="group_invalid")})
        subscriber.groups.set(groups)
        groups_after = sorted(g.pk for g in groups)

    subscriber.updated_at = moment
    save_with_legacy_account(subscriber)
    refresh_search_text(subscriber)
    old, new = audit.diff(
        {**before, "groups": before_groups}, {**audit.snapshot(subscriber, AUDITED_FIELDS), "groups": groups_after}
    )
    if old or new:
        audit.record(
            actor=acting_user,
            action="subscriber.updated",
            obj=subscriber,
            subscriber_id=subscriber.pk,
            before=old,
            after=new,
            reason=reason,
        )
        events.emit("subscriber.updated", subscriber_id=subscriber.pk, fields=sorted(new))
    return subscriber


@transaction.atomic
def do_close_subscriber(
    subscriber: Subscriber, *, reason: str, acting_user, closed_on: dt.date | None = None
) -> Subscriber:
    """Close the account and terminate its contracts. Billing (its own issue) ends subscriptions on the event."""
    check_perm(acting_user, Perm.SUBSCRIBER_CLOSE)
    subscriber = _lock(subscriber)
    check_branch(acting_user, subscriber.branch_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Say why the account is closed."), code="required")})
    if subscriber.is_closed:
        raise ValidationError(_("The account is already closed."), code="already_closed")
    before = audit.snapshot(subscriber, AUDITED_FIELDS)
    moment = clock.now()
    subscriber.status = SubscriberStatus.CLOSED
    subscriber.closed_at = moment
    subscriber.close_reason = reason
    subscriber.updated_at = moment
    subscriber.save(update_fields=["status", "closed_at", "close_reason", "updated_at"])
    subscriber.contracts.filter(status=ContractStatus.ACTIVE).update(
        status=ContractStatus.TERMINATED, terminated_on=closed_on or clock.today()
    )
    old, new = audit.diff(before, audit.snapshot(subscriber, AUDITED_FIELDS))
    audit.record(
        actor=acting_user,
        action="subscriber.closed",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        before=old,
        after=new,
        reason=reason,
    )
    events.emit("subscriber.closed", subscriber_id=subscriber.pk)
    return subscriber


@transaction.atomic
def do_reopen_subscriber(subscriber: Subscriber, *, reason: str, acting_user) -> Subscriber:
    check_perm(acting_user, Perm.SUBSCRIBER_CLOSE)
    subscriber = _lock(subscriber)
    check_branch(acting_user, subscriber.branch_id)
    if not subscriber.is_closed:
        raise ValidationError(_("The account is not closed."), code="not_closed")
    moment = clock.now()
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.closed_at = None
    subscriber.close_reason = ""
    subscriber.updated_at = moment
    subscriber.save(update_fields=["status", "closed_at", "close_reason", "updated_at"])
    audit.record(
        actor=acting_user,
        action="subscriber.reopened",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        after={"status": subscriber.status},
        reason=reason,
    )
    events.emit("subscriber.reopened", subscriber_id=subscriber.pk)
    return subscriber
