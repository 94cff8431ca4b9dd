"""Ops' retry of a failed task: the same function and arguments, queued again.

Safe because every task calls a service that locks and re-checks: a retry of
something the sweep already did changes nothing.
"""

from django.db import transaction
from django_q.models import Failure
from django_q.tasks import async_task

from auction.services.events import event_record


def failed_task_retry(*, task_id: str, staff: str = "") -> str:
    """Queue the failed task again and remove its failure row; returns the new task's id."""
    with transaction.atomic():
        task = Failure.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            return ""  # retried already (or cleaned up): nothing to do twice
        func, args, kwargs = task.func, task.args or (), task.kwargs or {}
        event_record("ops.task_retried", actor="ops", data={"task": task.name, "func": func, "staff": staff})
        task.delete()
    return async_task(func, *args, **kwargs)


def is_core_schedule(name: str) -> bool:
    """The sweep and the per-object lifecycle schedules: written by jobs.schedules, never by hand."""
    from jobs.schedules import SWEEP_NAME

    return name == SWEEP_NAME or name.startswith(("lot ", "special ", "order "))
