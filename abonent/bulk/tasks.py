"""The bulk app's background work: an action too large to run in the request that confirmed it."""

from django_tasks import task


@task(queue_name="default")
def run_bulk_action(action_id: int) -> dict:
    from .actions import outcome_counts
    from .actions import run_bulk_action as run

    action = run(action_id)
    return {
        "action": action_id,
        "status": action.status if action else None,
        **(outcome_counts(action) if action else {}),
    }
