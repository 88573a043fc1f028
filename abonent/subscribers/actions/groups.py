"""Group membership of one subscriber at a time, for the bulk "move to group" and anyone else who needs it without
the whole profile edit (``do_update_subscriber`` replaces the whole set of groups)."""

from __future__ import annotations

from django.db import transaction

from abonent.core import audit, events
from abonent.staff.permissions import Perm, check_branch, check_perm

from ..models import Subscriber, SubscriberGroup
from .common import _lock


@transaction.atomic
def do_set_group_membership(
    subscriber: Subscriber, *, group: SubscriberGroup, member: bool, acting_user, reason: str = ""
) -> bool:
    """Put ``subscriber`` into ``group`` (``member``) or take it out; returns whether that changed anything (already
    in, or already out: nothing written). Audited as a change of the subscriber's groups, and announced like one
    (``subscriber.updated`` with ``groups``: dunning decides the exemption and rule again)."""
    check_perm(acting_user, Perm.SUBSCRIBER_EDIT)
    subscriber = _lock(subscriber)
    check_branch(acting_user, subscriber.branch_id)
    before = sorted(subscriber.groups.values_list("pk", flat=True))
    if member == (group.pk in before):
        return False
    if member:
        subscriber.groups.add(group)
        after = sorted([*before, group.pk])
    else:
        subscriber.groups.remove(group)
        after = [pk for pk in before if pk != group.pk]
    audit.record(
        actor=acting_user,
        action="subscriber.updated",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        before={"groups": before},
        after={"groups": after},
        reason=reason,
    )
    events.emit("subscriber.updated", subscriber_id=subscriber.pk, fields=["groups"])
    return True
