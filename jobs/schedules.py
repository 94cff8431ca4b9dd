"""Every schedule, defined here and written idempotently (upsert by name).

Exact-time one-off schedules (``ONCE``, named per object) make lifecycle
steps prompt; they are replaced when the time they wait for moves. The sweep
every minute makes them certain.
"""

from datetime import datetime

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
    return once(f"lot {lot_id}: end", "jobs.tasks.lot_end", ends_at, lot_id)


def special_phases(special_id: int, *, preview_at: datetime, starts_at: datetime, ends_at: datetime) -> None:
    now = timezone.now()
    for label, when in (("preview", preview_at), ("start", starts_at), ("end", ends_at)):
        if when > now:
            once(f"special {special_id}: {label}", "jobs.tasks.special_phase", when, special_id)
        else:
            Schedule.objects.filter(name=f"special {special_id}: {label}").delete()


def order_expiry(order_id: int, deadline: datetime) -> Schedule:
    return once(f"order {order_id}: expire", "jobs.tasks.order_expire", deadline, order_id)


def order_receipt_auto(order_id: int, when: datetime) -> Schedule:
    return once(f"order {order_id}: auto receipt", "jobs.tasks.order_receipt_auto", when, order_id)


def sweep_every_minute() -> Schedule:
    schedule, _ = Schedule.objects.update_or_create(
        name=SWEEP_NAME,
        defaults={"func": "jobs.tasks.sweep", "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
    return schedule


def now_after_commit(func: str, *args) -> None:
    """Enqueue once the transaction commits: a worker must see what it is told about."""
    from django.db import transaction

    transaction.on_commit(lambda: async_task(func, *args))
