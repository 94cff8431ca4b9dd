"""Every schedule, defined here and written idempotently (upsert by name).

Exact-time one-off schedules (``ONCE``, named per object) make lifecycle
steps prompt; they are replaced when the time they wait for moves. The sweep
every minute makes them certain.

Any process writes them (each cluster at its start, web processes when a lot's
end moves, clusters when orders are made); a unique index on the name
(auction/migrations/0013_schedule_names_unique.py) makes two writers of one new
name at once wait for each other, so each name is one schedule and runs once.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from project.cache import Breaker

logger = logging.getLogger(__name__)

SWEEP_NAME = "sweep: reconcile everything due"
TOKENS_PURGE_NAME = "tokens: purge expired and revoked"
IDEMPOTENCY_PURGE_NAME = "purge: idempotency keys past 24 h"
NOTIFICATIONS_NAME = "notifications: send what is due"
# The sweep schedule's cluster: none of Django-Q2's, so its schedulers leave
# the row to runjobs' own sweeper thread.
INLINE_CLUSTER = "runjobs: inline"


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


def order_receipt_auto(order_id: int, when: datetime) -> Schedule:
    return once(f"order {order_id}: auto receipt", "jobs.tasks.order_receipt_auto", when, order_id)


def sweep_every_minute(*, first_run: datetime | None = None) -> Schedule:
    """``first_run``: when the next sweep is due (else it keeps its time).

    ``runjobs`` runs it (jobs/sweeper.py), every ``AUCTION_SWEEP_SECONDS``
    whatever the row's minutes say; its cluster is one no Django-Q2 cluster
    has, so no scheduler queues it behind a backlog."""
    defaults = {
        "func": "jobs.tasks.sweep", "schedule_type": Schedule.MINUTES, "repeats": -1, "cluster": INLINE_CLUSTER,
        "minutes": max(1, round(settings.AUCTION_SWEEP_SECONDS / 60)),
    }
    if first_run is not None:
        defaults["next_run"] = first_run
    schedule, _ = Schedule.objects.update_or_create(name=SWEEP_NAME, defaults=defaults)
    return schedule


def tokens_purge_daily() -> Schedule:
    schedule, _ = Schedule.objects.update_or_create(
        name=TOKENS_PURGE_NAME,
        defaults={"func": "jobs.tasks.tokens_purge", "schedule_type": Schedule.DAILY, "repeats": -1},
    )
    return schedule


def idempotency_purge_hourly() -> Schedule:
    schedule, _ = Schedule.objects.update_or_create(
        name=IDEMPOTENCY_PURGE_NAME,
        defaults={"func": "jobs.tasks.idempotency_purge", "schedule_type": Schedule.HOURLY, "repeats": -1},
    )
    return schedule


def notifications_every_minute() -> Schedule:
    # Outbids (derived from bids) and reminders (payment_due) wait for this one.
    schedule, _ = Schedule.objects.update_or_create(
        name=NOTIFICATIONS_NAME,
        defaults={"func": "jobs.tasks.notifications_send", "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
    return schedule


def periodic(*, first_sweep: datetime | None = None) -> None:
    """Every periodic schedule: written by migrate and again at cluster start."""
    sweep_every_minute(first_run=first_sweep)
    tokens_purge_daily()
    idempotency_purge_hourly()
    notifications_every_minute()


def now_after_commit(func: str, *args) -> None:
    """Enqueue once the transaction commits: a worker must see what it is told about."""
    transaction.on_commit(lambda: enqueue(func, *args))


class _QuickRedisBroker(RedisBroker):
    """The cluster's Redis queue, reached with short timeouts: it is only
    pushed to from here, never popped (the cluster's own broker blocks on pops)."""

    @staticmethod
    def get_connection(list_key: str | None = None):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        timeout = settings.AUCTION_BROKER_TIMEOUT_MS / 1000
        return redis.from_url(
            Conf.REDIS, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )


_broker: RedisBroker | None = None
_breaker = Breaker("job broker (Redis)", settings.AUCTION_CACHE_BREAKER_SECONDS)


def _quick_broker():
    global _broker
    if not isinstance(Conf.REDIS, str) or not Conf.REDIS:
        return None  # the database broker: its rows are written like any other
    if _broker is None:
        _broker = _QuickRedisBroker(list_key=Conf.CLUSTER_NAME)
    return _broker


def enqueue(func: str, *args) -> None:
    """A task for the cluster now, or, with the broker unreachable, at the next
    sweep (auction/services/reconcile.py does everything these tasks do): a
    request that already committed its change must not fail for a queue."""
    if _breaker.is_open():
        logger.warning("job broker skipped: %s%r left to the sweep", func, args)
        return
    try:
        broker = _quick_broker()
        if broker is None:
            async_task(func, *args)
        else:
            async_task(func, *args, broker=broker)
    except Exception as error:  # noqa: BLE001  (Redis down or hung, or any broker failure)
        _breaker.failed(f"enqueue {func}{args!r}", error)


def once_after_commit(func: str, *args) -> None:
    """Enqueue ``func(*args)`` once per transaction however often it is asked for:
    a batch job that finds its own work (all refunds pending, say) needs one
    task for a settling transaction's thousand refunds, not a thousand."""
    connection = transaction.get_connection()
    wanted = (func, args)
    if connection.in_atomic_block and any(getattr(callback, "enqueues", None) == wanted for _, callback, _ in connection.run_on_commit):
        return

    def enqueue_once() -> None:
        enqueue(func, *args)

    enqueue_once.enqueues = wanted
    transaction.on_commit(enqueue_once)
