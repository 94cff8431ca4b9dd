"""Every schedule, defined here and written idempotently (upsert by name).

Exact-time one-off schedules (``ONCE``, named per object) make lifecycle
steps prompt; they are replaced when the time they wait for moves. The sweep
every minute makes them certain.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

SWEEP_NAME = "sweep: reconcile everything due"


def once(name: str, func: str, when: datetime, *args) -> Schedule:
    """Create or move the named one-off schedule; it deletes itself after running."""
    schedule, _ = Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": func,
            "args": ",".join(repr(arg) for arg in args) if args else None,
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": when,
        },
    )
    return schedule


def lot_end(lot_id: int, ends_at: datetime) -> Schedule:
    """One trigger per instant, not per lot: a special whose lots end together is
    one task, which settles every lot due in batches. A lot whose end moved
    (anti-sniping) gets the trigger of its new instant; the old one finds it
    not yet due and leaves it."""
    return once(f"lots end at {ends_at.isoformat()}", "jobs.tasks.lots_end", ends_at)


def special_phases(special_id: int, *, preview_at: datetime, starts_at: datetime, ends_at: datetime) -> None:
    now = timezone.now()
    for label, when in (("preview", preview_at), ("start", starts_at), ("end", ends_at)):
        if when > now:
            once(f"special {special_id}: {label}", "jobs.tasks.special_phase", when, special_id)
        else:
            Schedule.objects.filter(name=f"special {special_id}: {label}").delete()


def orders_expiry(deadline: datetime) -> Schedule:
    """One trigger per deadline: the orders of a settling batch share theirs."""
    return once(f"orders expire at {deadline.isoformat()}", "jobs.tasks.orders_expire", deadline)


def sweep_every_minute() -> Schedule:
    schedule, _ = Schedule.objects.update_or_create(
        name=SWEEP_NAME,
        defaults={"func": "jobs.tasks.sweep", "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
    return schedule


def now_after_commit(func: str, *args) -> None:
    """Enqueue once the transaction commits: a worker must see what it is told about."""
    transaction.on_commit(lambda: async_task(func, *args))


def once_after_commit(func: str, *args) -> None:
    """Enqueue ``func(*args)`` once per transaction however often it is asked for:
    a batch job that finds its own work (all refunds pending, say) needs one
    task for a settling transaction's thousand refunds, not a thousand."""
    connection = transaction.get_connection()
    wanted = (func, args)
    if connection.in_atomic_block and any(getattr(callback, "enqueues", None) == wanted for _, callback, _ in connection.run_on_commit):
        return

    def enqueue() -> None:
        async_task(func, *args)

    enqueue.enqueues = wanted
    transaction.on_commit(enqueue)
