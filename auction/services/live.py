"""Live updates, the publishing side: a change is announced after its commit.

A publisher sends only *that* something changed (a lot's id and version, a
user's personal event); each ASGI process reads the lot's state itself, once
per burst for all its sockets (``live/hub.py``). So an accepted bid pays for
one small publish and nothing else, and the hub always shows what the
database holds: a message can never carry a state that was rolled back.

Publishing never fails a change: it runs in ``transaction.on_commit`` (after
the commit, or at once in autocommit) and every error is logged and
swallowed. Towards Redis a bid writes its announcement to a non-blocking
socket and never waits for the answer (``RedisPublisher``), so neither a slow
nor a dead Redis slows it; one that is down is not asked again for
``LIVE_PUBLISH_RETRY_SECONDS``.

Two transports, picked by the settings: Redis pub/sub (``REDIS_URL`` set,
production) or the ``LiveChange`` table (the embedded default), which every
ASGI process tails.
"""

import json
import logging
import os
import queue
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

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

    transaction.on_commit(lambda: _dispatch(announce, deferred=outbid_before_bid_id is not None))


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


def _dispatch(announce: Callable[[Emit, float], None], *, deferred: bool = False) -> None:
    """Right after the commit: the commit's time is taken here, the sending is the transport's."""
    committed_at = time.time()
    try:
        if settings.LIVE_REDIS_URL:
            publisher = _redis_publisher()
            (publisher.defer if deferred else publisher.put)(announce, committed_at)
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
    """Publishes to Redis from the bid's own thread, right after its commit, without
    ever waiting on Redis: the PUBLISH commands are written (RESP, by hand) to a
    non-blocking socket and their answers read back, when there are any, at the
    next publish. A thread of the publisher's own and redis-py's pipeline cost a bid
    ~600 µs of CPU (bench/bid_cpu.py: the thread's wake-ups and the GIL passing
    between the two, more than the pipeline's ~70); this costs ~20.

    Bounded, whatever Redis does: a connect waits at most
    ``LIVE_PUBLISH_TIMEOUT_SECONDS``, once per ``LIVE_PUBLISH_RETRY_SECONDS`` while it
    fails; a Redis that stops reading or answering (``ANSWER_SECONDS``,
    ``BUFFER_LIMIT``) is given up and its announcements dropped, logged. The hubs
    read every watched lot again every LIVE_RESYNC_SECONDS anyway.

    An announcement that needs a query first (who a bid outbid, when it landed over
    bids it did not read) is deferred to a thread, so the query never delays the bid's
    answer; it publishes through the same socket."""

    ANSWER_SECONDS = 2.0  # generous: on a saturated box Redis may answer late, and waiting costs nothing
    BUFFER_LIMIT = 1 << 20  # bytes written and not yet taken by the kernel
    QUEUE_LIMIT = 10_000

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.unsent = b""
        self.unread = b""
        self.owed: deque[float] = deque()  # when each PUBLISH not yet answered was written
        self.down_until = 0.0
        self.dropped = 0
        self.deferred: queue.Queue | None = None

    # --- announcing ------------------------------------------------------

    def put(self, announce: Callable[[Emit, float], None], committed_at: float) -> None:
        messages: list[tuple[str, str]] = []
        announce(lambda channel, data: messages.append((channel, json.dumps(data, separators=(",", ":")))), committed_at)
        self.publish(messages)

    def defer(self, announce: Callable[[Emit, float], None], committed_at: float) -> None:
        with self.lock:
            if self.deferred is None:
                self.deferred = queue.Queue(maxsize=self.QUEUE_LIMIT)
                threading.Thread(target=self._run_deferred, name="live-publisher", daemon=True).start()
        try:
            self.deferred.put_nowait((announce, committed_at))
        except queue.Full:
            self._count_dropped(1)

    def _run_deferred(self) -> None:
        while True:
            announce, committed_at = self.deferred.get()
            try:
                self.put(announce, committed_at)
            except Exception:  # noqa: BLE001
                logger.exception("live: publishing failed")
            finally:
                self.deferred.task_done()

    def publish(self, messages: list[tuple[str, str]]) -> None:
        if not messages:
            return
        commands = b"".join(_publish_command(redis_channel(channel), payload) for channel, payload in messages)
        with self.lock:
            if not self._connected():
                self._count_dropped(len(messages))
                return
            try:
                self._read_answers()
                self.unsent += commands
                self.owed.extend([time.monotonic()] * len(messages))
                self._write()
            except (OSError, RedisUnusable) as error:
                self._give_up(error)

    # --- the socket ------------------------------------------------------

    def _connected(self) -> bool:
        if self.sock is not None:
            return True
        if time.monotonic() < self.down_until:
            return False
        try:
            self.sock = _redis_connect(settings.LIVE_REDIS_URL, settings.LIVE_PUBLISH_TIMEOUT_SECONDS)
        except (OSError, RedisUnusable) as error:
            self._give_up(error)
            return False
        return True

    def _write(self) -> None:
        while self.unsent:
            try:
                sent = self.sock.send(self.unsent)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                break
            self.unsent = self.unsent[sent:]
        if len(self.unsent) > self.BUFFER_LIMIT:
            raise RedisUnusable(f"Redis took nothing of the last {len(self.unsent)} bytes")

    def _read_answers(self) -> None:
        while self.owed:
            try:
                chunk = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not chunk:
                raise RedisUnusable("Redis closed the connection")
            self.unread += chunk
            *answers, self.unread = self.unread.split(b"\r\n")
            for answer in answers:
                if self.owed:
                    self.owed.popleft()
                if answer.startswith(b"-"):
                    raise RedisUnusable(f"Redis refused a publish: {answer.decode(errors='replace')}")
        if self.owed and time.monotonic() - self.owed[0] > self.ANSWER_SECONDS:
            raise RedisUnusable(f"Redis has not answered for {self.ANSWER_SECONDS:.0f}s")

    def _give_up(self, error: Exception) -> None:
        retry = settings.LIVE_PUBLISH_RETRY_SECONDS
        logger.error("live: publishing to Redis failed (%s); not asked again for %ss", error, retry)
        if self.sock is not None:
            self.sock.close()
        self.sock, self.unsent, self.unread = None, b"", b""
        self.owed.clear()
        self.down_until = time.monotonic() + retry

    def _count_dropped(self, count: int) -> None:
        self.dropped += count
        if self.dropped % 1000 < count:
            logger.error("live: Redis unusable, %s announcements dropped so far", self.dropped)

    def flush(self, timeout: float = 10.0) -> bool:
        """For tests and shutdown: wait until everything announced was answered (or dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.deferred is None or not self.deferred.unfinished_tasks:
                with self.lock:
                    if self.sock is None:
                        return True
                    try:
                        self._write()
                        self._read_answers()
                    except (OSError, RedisUnusable) as error:
                        self._give_up(error)
                        return True
                    if not self.unsent and not self.owed:
                        return True
            time.sleep(0.005)
        return False


class RedisUnusable(Exception):
    pass


def _publish_command(channel: str, payload: str) -> bytes:
    name, body = channel.encode(), payload.encode()
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(name), name, len(body), body)


def _redis_connect(url: str, timeout: float) -> socket.socket:
    """A non-blocking socket to the Redis of ``url`` (redis://, rediss://, unix://), logged in
    when the URL carries a password. PUBLISH ignores the database number."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(parts.path)
        except OSError:
            sock.close()
            raise
    else:
        sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "rediss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
    try:
        if parts.password:
            words = [b"AUTH", *([unquote(parts.username).encode()] if parts.username else []),
                     unquote(parts.password).encode()]
            sock.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words))
            answer = sock.recv(1024)
            if not answer.startswith(b"+OK"):
                raise RedisUnusable(f"Redis refused the login: {answer[:100].decode(errors='replace')}")
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


_publisher: RedisPublisher | None = None
_publisher_lock = threading.Lock()


def _redis_publisher() -> RedisPublisher:
    global _publisher
    # A forked worker (gunicorn) must not write to its parent's socket: it opens its own.
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
    (a deferring thread of the old one stays parked on its empty queue)."""
    global _publisher
    live_publisher_flush()
    if _publisher is not None and _publisher.sock is not None:
        _publisher.sock.close()
    _publisher = None
