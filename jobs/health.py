"""Is a job cluster running, and how far behind is it? One answer for the back
office's warning (cms/dashboard.py), ``/readyz`` and ``/metrics`` (project/).

Two signs of life, either enough:

- Django-Q2's own heartbeat: every cluster's guard loop saves a ``Stat``
  each half second (``guard_cycle``) that its broker keeps for 3 s, in Redis
  for the Redis broker, in Django's cache for the database broker (the
  embedded default's cache is a table every process shares). A stat read
  here is at most a few seconds old, and ``Stat.get_all()`` lists them.
- The minute sweep's schedule: the cluster's scheduler moves its
  ``next_run`` on each run, so a ``next_run`` more than a minute in the past
  means no cluster has run its schedules since. This works on any broker
  and any cache, whatever the broker can be asked.

The broker is asked through a client with short timeouts of its own, so a
hung Redis makes this slow by at most that, never hangs a page.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.models import Failure, Schedule
from django_q.status import Stat
from redis.backoff import NoBackoff
from redis.retry import Retry

HEARTBEAT_GRACE = timedelta(minutes=1)
# A stopping cluster saves its stat one last time: that is no sign of life.
_STOPPED = {str(Conf.STOPPED), str(Conf.STOPPING)}


@dataclass(frozen=True)
class ClusterHeartbeat:
    clusters: int  # clusters whose stat the broker holds now, stopping ones left out
    newest_stat_at: datetime | None
    sweep_next_run: datetime | None
    sweep_exists: bool
    is_beating: bool


_timed_clients: dict[str, redis.Redis] = {}


class _TimedRedisBroker(RedisBroker):
    """Django-Q2's Redis broker on a client that gives up after the broker timeout
    (one per process and URL: its pool keeps the connections)."""

    @staticmethod
    def get_connection(list_key: str | None = None):
        seconds = settings.AUCTION_BROKER_TIMEOUT_MS / 1000
        key = repr(Conf.REDIS)
        client = _timed_clients.get(key)
        if client is None:
            # One try: a retry only multiplies what a hung Redis costs the probe.
            options = {"socket_timeout": seconds, "socket_connect_timeout": seconds, "retry": Retry(NoBackoff(), 0)}
            client = redis.from_url(Conf.REDIS, **options) if isinstance(Conf.REDIS, str) else redis.Redis(**{**Conf.REDIS, **options})
            _timed_clients[key] = client
        return client


def broker() -> Broker:
    """The cluster's broker, asked with short timeouts (the database broker needs none of its own)."""
    found = get_broker()
    return _TimedRedisBroker(list_key=Conf.CLUSTER_NAME) if isinstance(found, RedisBroker) else found


def cluster_heartbeat(*, now: datetime | None = None, stats: list | None = None) -> ClusterHeartbeat:
    """``stats``: what ``Stat.get_all()`` returned (read here when not given)."""
    from jobs.schedules import SWEEP_NAME

    now = now or timezone.now()
    if stats is None:
        try:
            stats = Stat.get_all(broker=broker())
        except Exception:  # noqa: BLE001  (the broker unreachable: the sweep's schedule still tells; /readyz checks the broker itself)
            stats = []
    alive = [stat for stat in stats if str(getattr(stat, "status", "")) not in _STOPPED]
    newest = max((stat.timestamp for stat in alive), default=None)
    sweep = list(Schedule.objects.filter(name=SWEEP_NAME).values_list("next_run", flat=True)[:1])
    sweep_next_run = sweep[0] if sweep else None
    sweep_on_time = bool(sweep) and (sweep_next_run is None or sweep_next_run >= now - HEARTBEAT_GRACE)
    stat_fresh = newest is not None and newest >= now - HEARTBEAT_GRACE
    return ClusterHeartbeat(
        clusters=len(alive), newest_stat_at=newest, sweep_next_run=sweep_next_run, sweep_exists=bool(sweep),
        is_beating=stat_fresh or sweep_on_time,
    )


def queued_tasks() -> int:
    """Tasks waiting in the broker for a worker (the database broker: those not taken yet)."""
    return int(broker().queue_size() or 0)


def failed_tasks() -> int:
    """Failed tasks kept (Django-Q2 keeps every failure; ops delete them in the admin)."""
    return Failure.objects.count()
