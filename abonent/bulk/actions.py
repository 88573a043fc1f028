"""Writes of the bulk app: previewing an action (kept on the server with its form key and the set it counted),
confirming it (once per form key, on that set only) and running it.

Guarantees: the form key is issued by the preview and bound to its user; the confirmation is atomic and refused
whole when anything is wrong (permissions, a key never issued, expired or another user's); it acts on the
subscribers the preview counted that the user still sees, never on one the filter matches since; a second send of
the same form finds the first action and changes nothing. The run changes
each subscriber through that change's own action (``do_set_group_membership``, ``do_change_plan``,
``do_create_bulk``), so each change is checked (permission, branch), audited and announced as if made by hand, in a
transaction of its own with the item's row locked: a run interrupted or started twice does each subscriber once.
The acting user is the one who confirmed. The action itself is audited when confirmed and when finished.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
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
from abonent.subscribers import selectors as subscriber_selectors
from abonent.subscribers.actions import do_set_group_membership
from abonent.subscribers.models import Subscriber

from .models import BulkAction, BulkActionItem, BulkKind, BulkPreview, BulkStatus, ItemOutcome, SkipReason
from .rules import KIND_PERMISSIONS, Params, Preview, classified, resolved
from .selection import Selection

logger = logging.getLogger(__name__)

# A set this large is a migration, not an operator's afternoon: narrow the filter.
MAX_SUBSCRIBERS = 50_000
# Up to this many subscribers the action runs in the request that confirmed it; more go to the worker.
INLINE_LIMIT = 200
CHUNK = 200
_KEY = re.compile(r"[0-9a-f]{32}")
# A preview's form may be confirmed this long after it was shown; then it is previewed again.
PREVIEW_TTL = dt.timedelta(hours=2)
# Ids per ``IN (...)`` when the kept set is checked again (SQLite's limit on a statement's parameters).
_ID_BATCH = 5000


def check_may(user, kind: str) -> None:
    check_perm(user, Perm.SUBSCRIBER_BULK)
    check_perm(user, KIND_PERMISSIONS[kind])


def confirmed_already(form_key: str, user) -> BulkAction | None:
    """The action this form key confirmed, if ``user`` sent it before."""
    if not _KEY.fullmatch(form_key or ""):
        return None
    return BulkAction.objects.filter(form_key=form_key, created_by=user).first()


def do_preview_bulk_action(
    *, params: Params, selection: Selection, fingerprint: str, acting_user
) -> tuple[Preview, BulkPreview | None]:
    """Count what the action would do to the selection now and keep it, with the set it counted, under a new form
    key for ``acting_user``'s confirmation. Nothing is kept (``None``) when there is nothing to confirm: the set is
    over ``MAX_SUBSCRIBERS`` or the action changes nobody."""
    check_may(acting_user, params.kind)
    ids, preview = resolved(selection.subscribers(acting_user), params, limit=MAX_SUBSCRIBERS)
    if preview.total > MAX_SUBSCRIBERS or not preview.touched:
        return preview, None
    now = clock.now()
    BulkPreview.objects.filter(created_by=acting_user, created_at__lt=now - PREVIEW_TTL).delete()
    kept = BulkPreview.objects.create(
        form_key=secrets.token_hex(16),
        created_by=acting_user,
        created_at=now,
        fingerprint=fingerprint,
        subscriber_ids=ids,
        preview=preview.as_json(),
    )
    return preview, kept


def previewed(form_key: str, user) -> BulkPreview:
    """The preview ``user`` was given this form key with. A key the server never issued, one expired, or one of
    another user is refused: a confirmation acts only on what its own author was shown."""
    kept = BulkPreview.objects.filter(form_key=form_key).first() if _KEY.fullmatch(form_key or "") else None
    if kept is None or kept.created_at < clock.now() - PREVIEW_TTL:
        raise ValidationError(_("The form has expired: preview the action again."), code="form_key_invalid")
    if kept.created_by_id != user.pk:
        raise PermissionDenied("the form key is another user's")
    return kept


def do_confirm_bulk_action(
    *, params: Params, selection: Selection, kept: BulkPreview, acting_user, reason: str = ""
) -> tuple[BulkAction, bool]:
    """The confirmed action over the set ``kept`` (the preview) counted, and whether it is new (``False``: this
    form was sent already, and that action is returned). Subscribers of that set the user no longer sees drop out
    (``preview["dropped"]``); none is added. The caller runs it (``run_inline``) or it goes to the worker."""
    check_may(acting_user, params.kind)
    if kept.created_by_id != acting_user.pk:
        raise PermissionDenied("the form key is another user's")
    form_key = kept.form_key
    existing = BulkAction.objects.filter(form_key=form_key, created_by=acting_user).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            visible = subscriber_selectors.visible_subscribers(acting_user)
            ids: list[int] = []
            for start in range(0, len(kept.subscriber_ids), _ID_BATCH):
                batch = kept.subscriber_ids[start : start + _ID_BATCH]
                ids += visible.filter(pk__in=batch).order_by("pk").values_list("pk", flat=True)
            if not ids:
                raise ValidationError(_("No subscribers are selected."), code="bulk_empty")
            preview = {**kept.preview, "dropped": len(kept.subscriber_ids) - len(ids)}
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
        existing = BulkAction.objects.filter(form_key=form_key, created_by=acting_user).first()
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
    action.save(update_fields=["status", "finished_at"])
    action.refresh_from_db(fields=["bulk_message"])
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
    if subscription.status == SubscriptionStatus.ACTIVE and subscription.next_charge_on <= clock.today():
        # do_change_plan would charge the missed periods now; the bulk change charges nothing (rules._plan_rules).
        return ItemOutcome.SKIPPED, SkipReason.BILLING_PENDING, ""
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
    with transaction.atomic():
        # The row locked and read afresh: a second run of the action alongside waits here, then finds the message.
        locked = BulkAction.objects.select_for_update().filter(pk=action.pk).values_list("bulk_message_id", flat=True)
        if locked.get() is not None:
            return
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

        message = notifications.do_create_bulk(
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
        BulkAction.objects.filter(pk=action.pk).update(bulk_message=message)
        action.bulk_message = message
