"""Rows that look like one subscriber: the same passport or INN; the same phone and name; the same address and
name — among the file's new rows and against subscribers already here (not those this source imported: they are the
same records, matched by old id). Each group is kept on the job (``DuplicateGroup``) with the operator's decision,
which survives later dry runs of the job; without one, the job's default applies."""

from __future__ import annotations

from collections import defaultdict

from abonent.core.bulk_load import matching
from abonent.subscribers.actions.common import display_name_of
from abonent.subscribers.models import Address, ContactPoint, Subscriber
from abonent.subscribers.search import name_key

from .models import DuplicateGroup, DuplicateKind

BATCH = 5000


class Outcome(dict):
    """Row number → (decision, row number it duplicates or None, existing subscriber id or None)."""

    def __init__(self):
        super().__init__()
        self.reasons: dict[int, str] = {}

    def why(self, number: int) -> str:
        return self.reasons.get(number, "")


def _address_key(a, name: str) -> str:
    return "|".join(p.strip().lower() for p in (a.city, a.street, a.house, a.building, a.apartment)) + "|" + name


def row_keys(row) -> list[tuple[str, str]]:
    s = row.subscriber
    profile = s.profile
    name = name_key(display_name_of(profile))
    keys = []
    if profile.get("passport_series") and profile.get("passport_number"):
        keys.append((DuplicateKind.DOCUMENT, f"passport {profile['passport_series']} {profile['passport_number']}"))
    if profile.get("inn"):
        keys.append((DuplicateKind.DOCUMENT, f"inn {profile['inn']}"))
    for phone in s.phones:
        keys.append((DuplicateKind.PHONE_NAME, f"{phone}|{name}"))
    for address in s.addresses:
        keys.append((DuplicateKind.ADDRESS_NAME, _address_key(address, name)))
    return keys


def _existing(rows, exclude: set[int]) -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = defaultdict(list)
    passports = [
        r.subscriber.profile.get("passport_number") for r in rows if r.subscriber.profile.get("passport_number")
    ]
    inns = [r.subscriber.profile.get("inn") for r in rows if r.subscriber.profile.get("inn")]
    phones = [p for r in rows for p in r.subscriber.phones]
    names = list({name_key(display_name_of(r.subscriber.profile)) for r in rows if r.subscriber.addresses})
    for start in range(0, len(passports), BATCH):
        for pk, series, number in matching(
            Subscriber.objects.all(), "passport_number", passports[start : start + BATCH]
        ).values_list("pk", "passport_series", "passport_number"):
            if pk not in exclude:
                found[(DuplicateKind.DOCUMENT, f"passport {series} {number}")].append(pk)
    for start in range(0, len(inns), BATCH):
        for pk, inn in matching(Subscriber.objects.all(), "inn", inns[start : start + BATCH]).values_list("pk", "inn"):
            if pk not in exclude:
                found[(DuplicateKind.DOCUMENT, f"inn {inn}")].append(pk)
    for start in range(0, len(phones), BATCH):
        for pk, phone, key in matching(
            ContactPoint.objects.filter(kind="phone"), "value", phones[start : start + BATCH]
        ).values_list("subscriber_id", "value", "subscriber__name_key"):
            if pk not in exclude:
                found[(DuplicateKind.PHONE_NAME, f"{phone}|{key}")].append(pk)
    for start in range(0, len(names), BATCH):
        for address in Address.objects.filter(subscriber__name_key__in=names[start : start + BATCH]).select_related(
            "subscriber"
        ):
            if address.subscriber_id not in exclude:
                found[(DuplicateKind.ADDRESS_NAME, _address_key(address, address.subscriber.name_key))].append(
                    address.subscriber_id
                )
    return found


def find_duplicates(job, rows, *, exclude_subscriber_ids: set[int]) -> Outcome:
    in_file: dict[tuple[str, str], list] = defaultdict(list)
    for row in rows:
        for key in dict.fromkeys(row_keys(row)):
            in_file[key].append(row)
    existing = _existing(rows, exclude_subscriber_ids)
    groups = {key: members for key, members in in_file.items() if len(members) > 1 or existing.get(key)}
    saved = {(g.kind, g.key): g for g in DuplicateGroup.objects.filter(job=job)}
    keep_ids = []
    outcome = Outcome()
    for (kind, key), members in groups.items():
        others = sorted(set(existing.get((kind, key), [])))
        group = saved.get((kind, key))
        values = {
            "row_numbers": [m.number for m in members],
            "old_ids": [m.old_id for m in members],
            "existing_subscriber_ids": others,
        }
        if group is None:
            group = DuplicateGroup.objects.create(job=job, kind=kind, key=key[:300], **values)
        else:
            DuplicateGroup.objects.filter(pk=group.pk).update(**values)
        keep_ids.append(group.pk)
        decision = group.decision or job.duplicate_default
        label = f"{DuplicateKind(kind).label}: {key.split('|')[0]}"
        for index, member in enumerate(members):
            if member.number in outcome:
                continue
            if others:
                outcome[member.number] = (decision, None, others[0])
            elif index > 0:
                outcome[member.number] = (decision, members[0].number, None)
            else:
                continue
            outcome.reasons[member.number] = str(label)
    DuplicateGroup.objects.filter(job=job).exclude(pk__in=keep_ids).delete()
    return outcome
