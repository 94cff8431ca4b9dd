"""Live updates, the publishing side: a change is announced after its commit.

A publisher sends only *that* something changed (a lot's id and version, a
user's personal event); each ASGI process reads the lot's state itself, once
per burst for all its sockets (``live/hub.py``). So an accepted bid pays for
one small publish and nothing else, and the hub always shows what the
database holds: a message can never carry a state that was rolled back.

Publishing never fails a change: it runs in ``transaction.on_commit`` (after
the commit, or at once in autocommit) and every error is logged and
swallowed. Towards Redis a bid only queues its announcement for this
process's publisher thread (``RedisPublisher``), so neither a slow nor a dead
Redis slows it; one that is down is not asked again for
``LIVE_PUBLISH_RETRY_SECONDS``.

Two transports, picked by the settings: Redis pub/sub (``REDIS_URL`` set,
production) or the ``LiveChange`` table (the embedded default), which every
ASGI process tails.
"""

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from auction.models import LiveChange

logger = logging.getLogger(__name__)

def lot_channel(lot_id: int) -> str:
    return f"lot:{lot_id}"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def redis_channel(channel: str) -> str:
    """The Redis pub/sub name of a channel: prefixed, so runs sharing a Redis never cross."""
    return f"{settings.LIVE_CHANNEL_PREFIX}:{channel}"


Emit = Callable[[str, dict], None]


def live_lot_changed(*, lot_id: int, version: int | None = None, outbid_user_ids: tuple[int, ...] = (), price: int = 0,
                     outbid_before_bid_id: int | None = None) -> None:
    """A lot's market state changed; its watchers and the bidders it outbid are told after commit.

    ``outbid_before_bid_id``: the bid landed over bids it did not read, so the
    bidder it outbid is the author of the bid before it, looked up after commit.
    """
    if not settings.LIVE_ENABLED:
        return

    def announce(emit: Emit, committed_at: float) -> None:
        emit(lot_channel(lot_id), {"lot_id": lot_id, "version": version, "committed_at": committed_at})
        outbid = set(outbid_user_ids)
        if outbid_before_bid_id is not None:
            previous = _author_of_bid_before(lot_id, outbid_before_bid_id)
            if previous is not None:
                outbid.add(previous)
        for user_id in sorted(outbid):
            emit(user_channel(user_id), {"type": "outbid", "lot_id": lot_id, "price": price})

    transaction.on_commit(lambda: _dispatch(announce))


def live_user_event(*, user_id: int | None, kind: str, **data: Any) -> None:
    """A personal event (``won``, ``deposit``, ``order``) for the user's own sockets, after commit."""
    if not settings.LIVE_ENABLED or not user_id:
        return

    def announce(emit: Emit, committed_at: float) -> None:
        emit(user_channel(user_id), {"type": kind, **data})

    transaction.on_commit(lambda: _dispatch(announce))


# Event kinds whose object the owner sees change on their socket.
_PERSONAL_EVENT_PREFIXES = {"deposit.": "deposit", "order.": "order"}


def live_event_recorded(kind: str, subjects: dict) -> None:
    """Called by ``event_record``: a deposit's or an order's change reaches its owner's sockets."""
    for prefix, personal in _PERSONAL_EVENT_PREFIXES.items():
        if not kind.startswith(prefix):
            continue
        user = subjects.get("user")
        user_id = subjects.get("user_id") or (user.pk if user is not None else None)
        row = subjects.get(personal)
        row_id = subjects.get(f"{personal}_id") or (row.pk if row is not None else None)
        if row_id:
            live_user_event(user_id=user_id, kind=personal, **{f"{personal}_id": row_id})
        return


def _dispatch(announce: Callable[[Emit, float], None]) -> None:
    """Right after the commit: the commit's time is taken here, the sending is the transport's."""
    committed_at = time.time()
    try:
        if settings.LIVE_REDIS_URL:
            _redis_publisher().put(announce, committed_at)
        else:
            announce(_append_to_log, committed_at)
    except Exception:  # noqa: BLE001  (a lost message is a watcher's stale screen, never a failed bid)
        logger.exception("live: publishing failed")


def _append_to_log(channel: str, data: dict) -> None:
    try:
        LiveChange.objects.create(channel=channel, data=data)
    except Exception:  # noqa: BLE001
        logger.exception("live: publishing %s failed", channel)


class RedisPublisher:
    """Publishes from a thread of its own, so a bid pays for a queue put (a few µs),
    never for a round trip to Redis; announcements queued together go out in one
    pipeline, in the order they were committed. A full queue or a Redis that is
    down drops announcements (logged): the hubs read every watched lot again
    every LIVE_RESYNC_SECONDS anyway."""

    QUEUE_LIMIT = 10_000
    BATCH_LIMIT = 500

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=self.QUEUE_LIMIT)
        self.pid = os.getpid()
        self.client = None
        self.down_until = 0.0
        self.dropped = 0
        self.thread = threading.Thread(target=self.run, name="live-publisher", daemon=True)
        self.thread.start()

    def put(self, announce: Callable[[Emit, float], None], committed_at: float) -> None:
        try:
            self.queue.put_nowait((announce, committed_at))
        except queue.Full:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                logger.error("live: publishing queue full, %s announcements dropped", self.dropped)

    def run(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.BATCH_LIMIT:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.send(batch)
            except Exception:  # noqa: BLE001
                logger.exception("live: publishing %s announcements failed", len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()

    def send(self, batch: list) -> None:
        if time.monotonic() < self.down_until:
            return
        messages: list[tuple[str, str]] = []

        def emit(channel: str, data: dict) -> None:
            messages.append((redis_channel(channel), json.dumps(data, separators=(",", ":"))))

        for announce, committed_at in batch:
            announce(emit, committed_at)
        if not messages:
            return
        try:
            pipeline = self.redis().pipeline(transaction=False)
            for channel, payload in messages:
                pipeline.publish(channel, payload)
            pipeline.execute()
        except Exception:
            self.down_until = time.monotonic() + settings.LIVE_PUBLISH_RETRY_SECONDS
            raise

    def redis(self):
        if self.client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            timeout = settings.LIVE_PUBLISH_TIMEOUT_SECONDS
            # No retries: a dead Redis is left alone for LIVE_PUBLISH_RETRY_SECONDS instead.
            self.client = redis.Redis.from_url(
                settings.LIVE_REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0), health_check_interval=0,
            )
        return self.client

    def flush(self, timeout: float = 10.0) -> bool:
        """For tests and shutdown: wait until everything queued went out (or was dropped)."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.queue.unfinished_tasks


_publisher: RedisPublisher | None = None
_publisher_lock = threading.Lock()


def _redis_publisher() -> RedisPublisher:
    global _publisher
    # A forked worker (gunicorn) inherits no thread: it starts its own.
    if _publisher is None or _publisher.pid != os.getpid():
        with _publisher_lock:
            if _publisher is None or _publisher.pid != os.getpid():
                _publisher = RedisPublisher()
    return _publisher


def _author_of_bid_before(lot_id: int, bid_id: int) -> int | None:
    from django.db import connection

    from auction.models import Bid

    # In the publisher's thread, its own connection, which no request cycle renews.
    connection.close_if_unusable_or_obsolete()
    return Bid.objects.filter(lot_id=lot_id, id__lt=bid_id).order_by("-id").values_list("user_id", flat=True).first()


def live_changes_purge(*, older_than_seconds: int = 3600) -> int:
    """The change log is only read live; an hour is far more than any process lags."""
    from datetime import timedelta

    from django.utils import timezone

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    deleted, _ = LiveChange.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def live_publisher_flush(timeout: float = 10.0) -> bool:
    return _publisher.flush(timeout) if _publisher is not None else True


def live_publisher_reset() -> None:
    """For tests that move ``LIVE_REDIS_URL``: the next publish starts a publisher afresh
    (the old thread stays parked on its empty queue)."""
    global _publisher
    live_publisher_flush()
    _publisher = None
