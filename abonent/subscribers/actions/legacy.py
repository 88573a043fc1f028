"""The old system's account number beside ours (docs/adr/0019): set, changed or cleared one at a time by staff, or
for many subscribers at once by the import.

The rules (``validators.validate_legacy_account``): 1-20 ASCII digits kept as given, unique among old numbers, and
never equal to any of our numbers, nor may we issue one of ours equal to an old one. Two kinds of race:

* two writers of the same old number: the unique index on ``legacy_account`` lets one win; the other's insert
  fails, and the action turns that into the field error ``legacy_account_taken``;
* an old number against one of ours being issued at the same moment: no single index spans the two columns, so
  both sides take the row lock of the account-number sequence (``sequences.hold`` here; ``allocate`` takes it when
  issuing) before looking at the other column. Only an old number shaped like ours (our length, a right check
  digit) can ever meet one we issue, so only such a number takes the lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events, sequences
from abonent.core.middleware import current_request_meta
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Perm, allowed_branch_ids, check_perm

from ..models import Subscriber
from ..search import with_legacy_account
from ..validators import account_serial_start, is_account_number_shaped, validate_legacy_account
from .common import ACCOUNT_SEQUENCE, _editable, refresh_search_text

__all__ = [
    "LegacyAccountResult",
    "check_legacy_account_free",
    "clean_legacy_account",
    "do_set_legacy_account",
    "do_set_legacy_accounts",
    "hold_account_numbers",
    "save_with_legacy_account",
]


def hold_account_numbers() -> None:
    """Serialise with whoever issues or sets a number shaped like ours, until this transaction ends."""
    sequences.hold(ACCOUNT_SEQUENCE, start=account_serial_start())


def _taken_error(number: str) -> ValidationError:
    return ValidationError(
        _("Account number %(number)s is already used by another subscriber.") % {"number": number},
        code="legacy_account_taken",
    )


def clean_legacy_account(value: str | None) -> str | None:
    """The number to store (None to clear), or a ``ValidationError`` on the field ``legacy_account``."""
    if value is None or not str(value).strip():
        return None
    try:
        return validate_legacy_account(str(value))
    except ValidationError as exc:
        raise ValidationError({"legacy_account": exc}) from exc


def check_legacy_account_free(number: str, *, subscriber_pk: int | None, account_number: str = "") -> None:
    """Whether ``number`` may become the old account number of the subscriber ``subscriber_pk`` (None: one being
    created, whose own number is ``account_number``). Call inside the writing transaction: it takes the lock."""
    if number == account_number:
        raise ValidationError(
            {
                "legacy_account": ValidationError(
                    _("The old account number is the same as the subscriber's own."), code="legacy_account_own"
                )
            }
        )
    if is_account_number_shaped(number):
        hold_account_numbers()
    others = Subscriber.objects.exclude(pk=subscriber_pk) if subscriber_pk else Subscriber.objects.all()
    if others.filter(account_number=number).exists() or others.filter(legacy_account=number).exists():
        raise ValidationError({"legacy_account": _taken_error(number)})


def save_with_legacy_account(subscriber: Subscriber, **save_kwargs) -> None:
    """Save in a savepoint: a concurrent writer of the same old number that committed first makes this write fail
    in the unique index, and the caller's transaction lives on to report the field error."""
    try:
        with transaction.atomic():
            subscriber.save(**save_kwargs)
    except IntegrityError as exc:
        number = subscriber.legacy_account
        if number and Subscriber.objects.filter(legacy_account=number).exclude(pk=subscriber.pk).exists():
            raise ValidationError({"legacy_account": _taken_error(number)}) from exc
        raise


@transaction.atomic
def do_set_legacy_account(subscriber: Subscriber, value: str | None, *, by, reason: str = "") -> Subscriber:
    """Set, change or (``None`` or "") clear the subscriber's old account number. ``by``: the staff user, or None
    for the system (the import checks its own user). Errors are on the field ``legacy_account``."""
    number = clean_legacy_account(value)
    subscriber = _editable(subscriber, by)
    if number == subscriber.legacy_account:
        return subscriber
    if number is not None:
        check_legacy_account_free(number, subscriber_pk=subscriber.pk, account_number=subscriber.account_number)
    before = subscriber.legacy_account
    subscriber.legacy_account = number
    subscriber.updated_at = clock.now()
    save_with_legacy_account(subscriber, update_fields=["legacy_account", "updated_at"])
    refresh_search_text(subscriber)
    audit.record(
        actor=by,
        action="subscriber.updated",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        before={"legacy_account": before},
        after={"legacy_account": number},
        reason=(reason or "").strip(),
    )
    events.emit("subscriber.updated", subscriber_id=subscriber.pk, fields=["legacy_account"])
    return subscriber


@dataclass(frozen=True)
class LegacyAccountResult:
    """What ``do_set_legacy_accounts`` did: ``changed`` subscriber ids, and ``errors`` by subscriber id (nothing
    was written for those; an id that is not a number is its own key, as given)."""

    changed: list[int]
    errors: dict[int | object, ValidationError]


CHUNK = 5000
# A writer of the same number may commit between the batch's checks and its UPDATE (the checks take no lock on
# numbers not shaped like ours): the UPDATE then fails in the unique index, and the batch is checked again, when
# that number is visible and becomes its pair's ``legacy_account_taken``.
ATTEMPTS = 3


@transaction.atomic
def do_set_legacy_accounts(
    pairs: list[tuple[int, str | None]], *, by, reason: str = "", fail_fast: bool = False
) -> LegacyAccountResult:
    """``do_set_legacy_account`` for many subscribers (``(subscriber id, number or None)``) in a few statements:
    the import sets 100,000 in seconds. Same rules; a pair that breaks one is left out with its error (codes as
    the single action's: ``legacy_account_format``, ``…_length``, ``…_taken``, ``…_own``, ``…_duplicate``,
    ``subscriber_invalid``, ``branch_denied``) and the rest are written, unless ``fail_fast`` (then nothing is
    written and the errors come back). Two numbers given in the batch for one subscriber: the last one counts."""
    pairs = list(pairs)
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                return _set_legacy_accounts(pairs, by=by, reason=reason, fail_fast=fail_fast)
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _subscriber_id(value) -> int | None:
    """A subscriber id as given in a pair (an int, or a string of ASCII digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None
    if isinstance(value, int) and 0 < value < 2**63:  # a bigint primary key
        return value
    return None


def _set_legacy_accounts(pairs, *, by, reason: str, fail_fast: bool) -> LegacyAccountResult:
    if by is not None:
        check_perm(by, Perm.SUBSCRIBER_EDIT)
    wanted: dict[int, str | None] = {}
    errors: dict[int, ValidationError] = {}
    for given, value in pairs:
        subscriber_id = _subscriber_id(given)
        if subscriber_id is None:
            # Keyed by what was given: an import's broken id column is reported on its pair, not a ValueError.
            # Not the value itself unless a string: True would be the same key as subscriber 1.
            key = given if isinstance(given, str) else repr(given)
            errors[key] = ValidationError(_("No such subscriber."), code="subscriber_invalid")
            continue
        try:
            wanted[subscriber_id] = clean_legacy_account(value)
            errors.pop(subscriber_id, None)
        except ValidationError as exc:
            errors[subscriber_id] = exc.error_dict["legacy_account"][0]
            wanted.pop(subscriber_id, None)
    if any(n is not None and is_account_number_shaped(n) for n in wanted.values()):
        hold_account_numbers()

    ids = sorted(wanted)
    current: dict[int, tuple[str, str | None, str, int]] = {}
    for start in range(0, len(ids), CHUNK):
        rows = Subscriber.objects.filter(pk__in=ids[start : start + CHUNK]).order_by("pk").select_for_update()
        for pk, ours, legacy, text, branch_id in rows.values_list(
            "pk", "account_number", "legacy_account", "search_text", "branch_id"
        ):
            current[pk] = (ours, legacy, text, branch_id)
    branches = allowed_branch_ids(by) if by is not None else None
    for pk in ids:
        if pk not in current:
            errors[pk] = ValidationError(_("No such subscriber."), code="subscriber_invalid")
        elif branches is not None and current[pk][3] not in branches:
            errors[pk] = ValidationError(
                _("This record belongs to a branch you do not have access to."), code="branch_denied"
            )
        elif wanted[pk] is not None and wanted[pk] == current[pk][0]:
            errors[pk] = ValidationError(
                _("The old account number is the same as the subscriber's own."), code="legacy_account_own"
            )
    changes = {pk: n for pk, n in wanted.items() if pk not in errors and current[pk][1] != n}

    by_number: dict[str, list[int]] = {}
    for pk, number in changes.items():
        if number is not None:
            by_number.setdefault(number, []).append(pk)
    for number, holders in by_number.items():
        if len(holders) > 1:
            for pk in holders:
                errors[pk] = ValidationError(
                    _("Old account number %(number)s is given for several subscribers.") % {"number": number},
                    code="legacy_account_duplicate",
                )
    numbers = [n for n, holders in by_number.items() if len(holders) == 1]
    holder_of: dict[str, int] = {}
    for start in range(0, len(numbers), CHUNK):
        part = numbers[start : start + CHUNK]
        for ours in Subscriber.objects.filter(account_number__in=part).values_list("account_number", flat=True):
            errors[by_number[ours][0]] = _taken_error(ours)
        for holder, number in Subscriber.objects.filter(legacy_account__in=part).values_list("pk", "legacy_account"):
            if holder != by_number[number][0]:
                holder_of[number] = holder
    # A number another subscriber holds is free only when this batch moves that subscriber to another number (a
    # swap), and only while that move itself stands: a refusal can free nothing, so repeat until nothing changes.
    refused = True
    while refused:
        refused = False
        for number, holder in holder_of.items():
            wanter = by_number[number][0]
            if wanter not in errors and (holder not in changes or holder in errors):
                errors[wanter] = _taken_error(number)
                refused = True
    changes = {pk: n for pk, n in changes.items() if pk not in errors}
    if errors and fail_fast:
        return LegacyAccountResult(changed=[], errors=errors)
    if changes:
        _write(changes, current, by, (reason or "").strip())
    return LegacyAccountResult(changed=sorted(changes), errors=errors)


def _write(changes: dict[int, str | None], current: dict, by, reason: str) -> None:
    moment = clock.now()
    rows, rebuild = [], []
    for pk, number in changes.items():
        ours, old, text, _branch = current[pk]
        new_text = with_legacy_account(text, ours, old, number)
        if new_text is None:
            rebuild.append(pk)
            new_text = text
        rows.append((pk, number, new_text))
    # Numbers moving between subscribers in one batch (a swap) would meet in the unique index mid-statement:
    # clear them first.
    moving = [pk for pk in changes if current[pk][1] is not None]
    if moving:
        Subscriber.objects.filter(pk__in=moving).update(legacy_account=None)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE subscribers_subscriber s SET legacy_account = v.number, search_text = v.text, updated_at = %s "
                "FROM unnest(%s::bigint[], %s::varchar[], %s::text[]) AS v(id, number, text) WHERE s.id = v.id",
                [moment, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
            )
        else:
            cursor.executemany(
                "UPDATE subscribers_subscriber SET legacy_account = %s, search_text = %s, updated_at = %s "
                "WHERE id = %s",
                [(number, text, moment, pk) for pk, number, text in rows],
            )
    for subscriber in Subscriber.objects.filter(pk__in=rebuild):
        refresh_search_text(subscriber)
    meta = current_request_meta()
    user = by if getattr(by, "pk", None) else None
    label = user.get_username() if user else meta.get("actor") or audit.SYSTEM
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                created_at=moment,
                actor=user,
                actor_label=label,
                action="subscriber.updated",
                object_type=Subscriber._meta.label_lower,
                object_id=str(pk),
                object_repr=f"{current[pk][0]}"[:255],
                subscriber_id=pk,
                before={"legacy_account": current[pk][1]},
                after={"legacy_account": number},
                reason=reason,
                ip_address=meta.get("ip"),
                request_id=meta.get("request_id", ""),
            )
            for pk, number in changes.items()
        ],
        batch_size=CHUNK,
    )
    events.emit("subscribers.legacy_accounts_set", subscriber_ids=sorted(changes))
