"""Writes of the bulk app: confirming an action (once per form key, its set of subscribers fixed) and running it.

Guarantees: the confirmation is atomic and refused whole when anything is wrong (permissions, the key, a set over
``MAX_SUBSCRIBERS``); a second send of the same form finds the first action and changes nothing. The run changes
each subscriber through that change's own action (``do_set_group_membership``, ``do_change_plan``,
``do_create_bulk``), so each change is checked (permission, branch), audited and announced as if made by hand, in a
transaction of its own with the item's row locked: a run interrupted or started twice does each subscriber once.
The acting user is the one who confirmed. The action itself is audited when confirmed and when finished.
"""

from __future__ import annotations

import logging
import re
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from abonent.billing.actions import do_change_plan
from abonent.billing.models import Subscription, SubscriptionStatus
from abonent.core import audit, clock
from abonent.notifications import actions as notifications
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.actions import do_set_group_membership
from abonent.subscribers.models import Subscriber

from .models import BulkAction, BulkActionItem, BulkKind, BulkStatus, ItemOutcome, SkipReason
from .rules import KIND_PERMISSIONS, Params, classified
from .selection import Selection

logger = logging.getLogger(__name__)

# A set this large is a migration, not an operator's afternoon: narrow the filter.
MAX_SUBSCRIBERS = 50_000
# Up to this many subscribers the action runs in the request that confirmed it; more go to the worker.
INLINE_LIMIT = 200
CHUNK = 200
_KEY = re.compile(r"[0-9a-f]{32}")


def check_may(user, kind: str) -> None:
    check_perm(user, Perm.SUBSCRIBER_BULK)
    check_perm(user, KIND_PERMISSIONS[kind])


def confirmed_already(form_key: str, user) -> BulkAction | None:
    """The action this form key confirmed, if ``user`` sent it before."""
    if not _KEY.fullmatch(form_key or ""):
        return None
    return BulkAction.objects.filter(form_key=form_key, created_by=user).first()


def do_confirm_bulk_action(
    *, params: Params, selection: Selection, form_key: str, acting_user, preview: dict, reason: str = ""
) -> tuple[BulkAction, bool]:
    """The confirmed action with its set of subscribers, and whether it is new (``False``: this form was sent
    already, and that action is returned). The caller runs it (``run_inline``) or it goes to the worker."""
    check_may(acting_user, params.kind)
    if not _KEY.fullmatch(form_key or ""):
        raise ValidationError(_("The form has expired: open it again."), code="form_key_invalid")
    existing = BulkAction.objects.filter(form_key=form_key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            action = BulkAction.objects.create(
                kind=params.kind,
                form_key=form_key,
                params=params.as_json(),
                query=selection.query,
                preview=preview,
                reason=(reason or "").strip()[:500],
                created_by=acting_user,
                created_at=clock.now(),
            )
            ids = list(
                selection.subscribers(acting_user).order_by("pk").values_list("pk", flat=True)[: MAX_SUBSCRIBERS + 1]
            )
            if len(ids) > MAX_SUBSCRIBERS:
                raise ValidationError(
                    _("More than %(limit)s subscribers: narrow the filter.") % {"limit": MAX_SUBSCRIBERS},
                    code="bulk_too_many",
                )
            if not ids:
                raise ValidationError(_("No subscribers are selected."), code="bulk_empty")
            BulkActionItem.objects.bulk_create(
                [BulkActionItem(action=action, subscriber_id=pk) for pk in ids], batch_size=5000
            )
            audit.record(
                actor=acting_user,
                action="bulk.action_confirmed",
                obj=action,
                after={
                    "kind": action.kind,
                    "params": action.params,
                    "filter": selection.query,
                    "ticked": list(selection.ids) if selection.ids is not None else None,
                    "subscribers": len(ids),
                    "preview": preview,
                },
                reason=action.reason,
            )
            if len(ids) > INLINE_LIMIT:
                from .tasks import run_bulk_action

                transaction.on_commit(partial(run_bulk_action.enqueue, action_id=action.pk))
    except IntegrityError:
        # The same form sent twice at once: the other request's action stands.
        existing = BulkAction.objects.filter(form_key=form_key).first()
        if existing is None:
            raise
        return existing, False
    return action, True


def runs_inline(action: BulkAction) -> bool:
    return action.items.count() <= INLINE_LIMIT


# --- the run ------------------------------------------------------------------------------------------------


def run_bulk_action(action_id: int) -> BulkAction | None:
    """Carry out what is left of an action. Safe to run twice, or again after an interruption."""
    with transaction.atomic():
        action = BulkAction.objects.select_for_update().filter(pk=action_id).first()
        if action is None or action.status in (BulkStatus.DONE, BulkStatus.FAILED):
            return action
        action.status, action.started_at = BulkStatus.RUNNING, action.started_at or clock.now()
        action.save(update_fields=["status", "started_at"])
    params = Params.from_json(action.kind, action.params)
    try:
        if action.kind == BulkKind.MESSAGE:
            _run_message(action, params)
        else:
            _run_each(action, params)
    except Exception as exc:
        logger.exception("bulk action %s failed", action.pk)
        action.status, action.error = BulkStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        action.finished_at = clock.now()
        action.save(update_fields=["status", "error", "finished_at"])
        return action
    action.status, action.finished_at = BulkStatus.DONE, clock.now()
    action.save(update_fields=["status", "finished_at", "bulk_message"])
    audit.record(
        actor=action.created_by,
        action="bulk.action_finished",
        obj=action,
        after={"outcomes": outcome_counts(action)},
        reason=action.reason,
    )
    return action


def outcome_counts(action: BulkAction) -> dict[str, int]:
    """``done``, ``failed``, ``pending`` and ``skipped:<reason>`` counted over the action's items."""
    counts: dict[str, int] = {}
    for outcome, reason, n in action.items.order_by().values_list("outcome", "reason").annotate(n=Count("id")):
        key = f"{outcome}:{reason}" if outcome == ItemOutcome.SKIPPED else outcome
        counts[key] = counts.get(key, 0) + n
    return counts


def _act(action: BulkAction, params: Params, subscriber: Subscriber, plan, group) -> tuple[str, str, str]:
    """Change one subscriber; returns (outcome, reason, detail)."""
    user, reason = action.created_by, action.reason or _("Bulk action #%(id)s") % {"id": action.pk}
    if action.kind in (BulkKind.GROUP_ADD, BulkKind.GROUP_REMOVE):
        member = action.kind == BulkKind.GROUP_ADD
        changed = do_set_group_membership(subscriber, group=group, member=member, acting_user=user, reason=reason)
        if not changed:
            return ItemOutcome.SKIPPED, SkipReason.ALREADY_MEMBER if member else SkipReason.NOT_MEMBER, ""
        return ItemOutcome.DONE, "", ""
    subscription = (
        Subscription.objects.filter(subscriber=subscriber, service_id=plan.service_id)
        .exclude(status=SubscriptionStatus.TERMINATED)
        .first()
    )
    if subscription is None:
        return ItemOutcome.SKIPPED, SkipReason.NO_SUBSCRIPTION, ""
    do_change_plan(subscription, plan=plan, acting_user=user, reason=reason, at_period_end=True)
    return ItemOutcome.DONE, "", ""


def _run_each(action: BulkAction, params: Params) -> None:
    group, plan = params.group, params.plan
    if action.kind in (BulkKind.GROUP_ADD, BulkKind.GROUP_REMOVE) and group is None:
        raise ValidationError("the group was deleted")
    if action.kind == BulkKind.PLAN_CHANGE and plan is None:
        raise ValidationError("the plan was deleted")
    pending = action.items.filter(outcome=ItemOutcome.PENDING).order_by("pk")
    while True:
        chunk = list(pending.values_list("pk", "subscriber_id")[:CHUNK])
        if not chunk:
            return
        rules = dict(
            classified(Subscriber.objects.filter(pk__in=[sid for _pk, sid in chunk]), params).values_list("pk", "skip")
        )
        for item_id, subscriber_id in chunk:
            _run_item(action, params, item_id, subscriber_id, rules.get(subscriber_id, ""), plan, group)


def _run_item(action, params, item_id, subscriber_id, skip, plan, group) -> None:
    outcome, reason, detail = ItemOutcome.DONE, "", ""
    try:
        with transaction.atomic():
            item = BulkActionItem.objects.select_for_update().filter(pk=item_id, outcome=ItemOutcome.PENDING).first()
            if item is None:
                return  # done by a run alongside
            subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
            if subscriber is None:
                outcome, reason = ItemOutcome.SKIPPED, SkipReason.REFUSED
            elif skip:
                outcome, reason = ItemOutcome.SKIPPED, skip
            else:
                try:
                    with transaction.atomic():
                        outcome, reason, detail = _act(action, params, subscriber, plan, group)
                except ValidationError as exc:
                    outcome, reason, detail = ItemOutcome.SKIPPED, SkipReason.REFUSED, " ".join(exc.messages)[:300]
            item.outcome, item.reason, item.detail = outcome, reason, detail
            item.save(update_fields=["outcome", "reason", "detail"])
    except PermissionDenied as exc:
        # The operator lost the permission or the branch since confirming: nothing is done for this subscriber.
        BulkActionItem.objects.filter(pk=item_id, outcome=ItemOutcome.PENDING).update(
            outcome=ItemOutcome.FAILED, detail=str(exc)[:300]
        )


def _run_message(action: BulkAction, params: Params) -> None:
    """One bulk message of the notifications app to the items the rules leave in (its audience is this action's
    items done, ``audiences.SELECTION``): it is sent at its rate by that app's worker job."""
    if action.bulk_message_id is not None:
        return
    with transaction.atomic():
        pending = action.items.filter(outcome=ItemOutcome.PENDING)
        subscribers = Subscriber.objects.filter(pk__in=pending.values("subscriber_id"))
        skips = classified(subscribers, params).exclude(skip="").values_list("pk", "skip")
        by_reason: dict[str, list[int]] = {}
        for pk, skip in skips:
            by_reason.setdefault(skip, []).append(pk)
        for skip, ids in by_reason.items():
            pending.filter(subscriber_id__in=ids).update(outcome=ItemOutcome.SKIPPED, reason=skip)
        recipients = pending.update(outcome=ItemOutcome.DONE)
        if not recipients:
            return
        from .audiences import SELECTION

        action.bulk_message = notifications.do_create_bulk(
            notifications.BulkData(
                audience=SELECTION.key,
                audience_id=action.pk,
                channel=params.channel,
                subject=params.subject,
                body=params.body,
                marketing=params.marketing,
                per_minute=params.per_minute,
            ),
            recipients=recipients,
            acting_user=action.created_by,
        )
        action.save(update_fields=["bulk_message"])
