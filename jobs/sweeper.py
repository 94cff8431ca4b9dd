"""The sweep, run by ``runjobs`` in a thread of its own instead of through the queue.

The sweep is what finishes work whose task was lost or is stuck (issue 13): it
must not wait behind a backlog, and a big sale's end can queue thousands of
tasks, first in first out. So it never enters the queue: the cluster's main
process runs it beside the workers, the same on the Redis and the database
broker, with no second cluster to start or stop.

Of several clusters, one sweeps per interval: each takes its turn by moving
the sweep schedule's ``next_run`` with a conditional update (the row the
dashboard watches as the cluster's heartbeat). Django-Q2's own scheduler
never queues it: the row names a cluster no Django-Q2 cluster has
(``jobs.schedules.INLINE_CLUSTER``). Each sweep is kept like a task's result
(Successful / Failed tasks in the admin), so a failing sweep is seen.
"""

import logging
import threading
import traceback
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django_q.humanhash import uuid as task_uuid
from django_q.models import Schedule
from django_q.monitor import save_task

from jobs.schedules import INLINE_CLUSTER, SWEEP_NAME

logger = logging.getLogger(__name__)


def sweep_interval() -> timedelta:
    return timedelta(seconds=settings.AUCTION_SWEEP_SECONDS)


def sweep_claim(*, now: datetime) -> bool:
    """This process's turn to sweep, if the sweep is due: of clusters asking at
    once, the one whose conditional update moved ``next_run`` on."""
    due = Schedule.objects.filter(name=SWEEP_NAME, next_run__lte=now).values_list("pk", "next_run").first()
    if due is None:
        return False
    pk, next_run = due
    return Schedule.objects.filter(pk=pk, next_run=next_run).update(next_run=now + sweep_interval()) == 1


def sweep_run(*, now: datetime | None = None) -> dict | None:
    """One sweep if it is due and this process's turn; its report, else None."""
    from jobs import tasks

    if not sweep_claim(now=now or timezone.now()):
        return None
    name, task_id = task_uuid()
    started = timezone.now()
    try:
        result, success = tasks.sweep(), True
    except Exception:  # noqa: BLE001  (kept as a failed task; the next sweep retries)
        logger.exception("sweep failed; the next one retries")
        result, success = traceback.format_exc(), False
    stopped = timezone.now()
    save_task(
        {
            "id": task_id, "name": name, "func": "jobs.tasks.sweep", "args": (), "kwargs": {}, "started": started,
            "stopped": stopped, "result": result, "success": success, "group": SWEEP_NAME, "cluster": INLINE_CLUSTER,
            # Not the monitor's connection handling: this thread closes its own (sweep_forever).
            "sync": True,
        },
        None,
    )
    # The interval counts from the end of a long sweep (a recovery of thousands),
    # unless another cluster took a later turn meanwhile.
    following = stopped + sweep_interval()
    Schedule.objects.filter(name=SWEEP_NAME, next_run__lt=following).update(next_run=following, task=task_id)
    return result if success else None


def sweep_forever(stop: threading.Event, every: float) -> None:
    """Look every ``every`` seconds whether the sweep is due; sweep when it is."""
    while not stop.wait(every):
        try:
            sweep_run()
        except Exception:  # noqa: BLE001  (the database away: the next look retries)
            logger.exception("sweep turn failed; the next look retries")
        finally:
            close_old_connections()
