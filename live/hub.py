"""Fan-out in one ASGI process: one subscription per watched lot, one read per burst.

An announcement says only that a lot changed. The hub marks the lot dirty and
reads it (state and new bids) once for all of this process's sockets that
watch it, at most ``LIVE_MESSAGES_PER_SECOND`` times in any second: a change
to a quiet lot goes out at once, and a burst of bids becomes a few messages,
each with the newest state and the bids since the previous one. A sliding window,
not a spacing: spaced at 200 ms, a bid just after a message waited up to 200 ms,
most of the commit -> screen budget (bench/watchers.py). An announcement that comes while a read is running makes
another read follow it: the last message always shows the last commit.

One reader per process reads every lot that is due in one call (two queries,
however many lots), at most ``LIVE_READS_PER_SECOND`` times a second: read one
by one, 50 lots at 2 bids/s each cost a process ~100 reads/s through its
single database thread, most of its CPU (bench/lot_reads.py: ~3.9 ms of CPU
per lot read alone, ~0.3 ms per lot in a read of 50). A message
is handed to each socket inline, not as a task per socket (``live/sending.py``).
"""

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from api import presenters
from auction.services.live import lot_channel, user_channel
from live import reads
from live.reads import Origin
from live.sending import send_to_all
from live.sources import Source, source_for_settings
from live.watchers import counts_for_settings
from project import metrics

logger = logging.getLogger(__name__)


class Socket(Protocol):
    user_id: int | None
    origin: Origin
    client_ip: str
    staff: bool  # an admin session: also told how many watch each lot (live/watchers.py)
    last_heard: float  # time.monotonic() of the last message from the client

    async def send_text(self, text: str) -> None: ...

    async def close_idle(self) -> None: ...


def dumps(message: dict) -> str:
    return json.dumps(message, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def message_window() -> tuple[int, float]:
    """At most ``count`` messages per lot in any ``window`` seconds: 5 in 1 s by default (0.5: 1 in 2 s)."""
    rate = settings.LIVE_MESSAGES_PER_SECOND
    count = max(1, int(rate))
    return count, count / rate


def server_time() -> datetime:
    return presenters.local(timezone.now())


@dataclass
class LotFeed:
    watchers: set = field(default_factory=set)
    newest_bid_id: int | None = None  # None: not read yet (taken from the first snapshot)
    version: int | None = None
    dirty: bool = False
    committed_at: float | None = None
    shown: dict | None = None  # the lot as the last message showed it
    read_at: deque = field(default_factory=deque)  # time.monotonic() of its latest reads, the window's
    staff: set = field(default_factory=set)  # the watchers that are staff sockets (not counted)
    staff_told: set = field(default_factory=set)  # those past their snapshot: they get the count
    staff_unsent: set = field(default_factory=set)  # those of them not sent any count yet
    staff_count: int | None = None  # the count staff were last sent


class Hub:
    def __init__(self) -> None:
        self.feeds: dict[int, LotFeed] = {}
        self.users: dict[int, set] = defaultdict(set)
        self.sockets_by_ip: dict[str, int] = defaultdict(int)
        self.sockets = 0
        self.joined: set = set()
        self.messages_sent = 0
        self.staff_sockets = 0
        self.source: Source | None = None
        self._read_lots = sync_to_async(reads.lot_changes, thread_sensitive=True)
        self._dirty: set[int] = set()
        self._reader: asyncio.Task | None = None
        self._last_read = 0.0

    # --- sockets ---------------------------------------------------------

    def _source(self) -> Source:
        if self.source is None:
            self.source = source_for_settings(self.deliver, self.resync)
            self.source.start()
            asyncio.get_running_loop().create_task(self._resync_now_and_then())
            asyncio.get_running_loop().create_task(self._close_idle_sockets())
            asyncio.get_running_loop().create_task(self._count_watchers())
        return self.source

    async def _close_idle_sockets(self) -> None:
        while True:
            idle = settings.LIVE_IDLE_SECONDS
            await asyncio.sleep(min(max(idle / 10, 0.1), 5.0))
            cutoff = time.monotonic() - idle
            for socket in [socket for socket in self.joined if socket.last_heard < cutoff]:
                self.joined.discard(socket)
                asyncio.get_running_loop().create_task(socket.close_idle())

    async def _resync_now_and_then(self) -> None:
        """A safety net under pub/sub, which drops what it cannot deliver: every watched
        lot is read again now and then, and a state nobody announced still arrives."""
        while True:
            await asyncio.sleep(settings.LIVE_RESYNC_SECONDS)
            self.resync()

    def admit(self, socket: Socket) -> str | None:
        """Count a new socket against the caps; the reason when it is over one."""
        if self.sockets_by_ip[socket.client_ip] >= settings.LIVE_MAX_SOCKETS_PER_IP:
            return "Too many sockets from this address."
        if socket.user_id and len(self.users.get(socket.user_id, ())) >= settings.LIVE_MAX_SOCKETS_PER_USER:
            return "Too many sockets for this user."
        self.sockets_by_ip[socket.client_ip] += 1
        self.sockets += 1
        self.staff_sockets += socket.staff
        metrics.websockets_open(self.sockets)
        return None

    async def join(self, socket: Socket) -> None:
        source = self._source()
        self.joined.add(socket)
        if socket.user_id:
            if not self.users[socket.user_id]:
                await source.subscribe(user_channel(socket.user_id))
            self.users[socket.user_id].add(socket)

    async def leave(self, socket: Socket, lot_ids: set[int], *, admitted: bool) -> None:
        if admitted:
            self.sockets -= 1
            self.staff_sockets -= socket.staff
            metrics.websockets_open(self.sockets)
            self.sockets_by_ip[socket.client_ip] -= 1
            if self.sockets_by_ip[socket.client_ip] <= 0:
                del self.sockets_by_ip[socket.client_ip]
        self.joined.discard(socket)
        await self.unwatch(socket, lot_ids)
        if socket.user_id and socket in self.users.get(socket.user_id, ()):
            self.users[socket.user_id].discard(socket)
            if not self.users[socket.user_id]:
                del self.users[socket.user_id]
                await self._source().unsubscribe(user_channel(socket.user_id))

    async def watch(self, socket: Socket, lot_id: int) -> LotFeed:
        feed = self.feeds.get(lot_id)
        if feed is None:
            feed = self.feeds[lot_id] = LotFeed()
            # Subscribed before the snapshot is read: no change falls between the two.
            await self._source().subscribe(lot_channel(lot_id))
        feed.watchers.add(socket)
        if socket.staff:
            feed.staff.add(socket)
        return feed

    async def unwatch(self, socket: Socket, lot_ids: set[int]) -> None:
        for lot_id in lot_ids:
            feed = self.feeds.get(lot_id)
            if feed is None:
                continue
            feed.watchers.discard(socket)
            feed.staff.discard(socket)
            feed.staff_told.discard(socket)
            feed.staff_unsent.discard(socket)
            if not feed.watchers:
                del self.feeds[lot_id]
                self._dirty.discard(lot_id)
                await self._source().unsubscribe(lot_channel(lot_id))

    def snapshot_sent(self, socket: Socket, lot_id: int) -> None:
        """A staff socket's count for the lot follows its snapshot, never comes before it."""
        feed = self.feeds.get(lot_id)
        if feed is not None and socket in feed.staff:
            feed.staff_told.add(socket)
            feed.staff_unsent.add(socket)

    def snapshot_read(self, lot_id: int, *, version: int, newest_bid_id: int) -> None:
        feed = self.feeds.get(lot_id)
        if feed is not None and feed.newest_bid_id is None:
            feed.newest_bid_id = newest_bid_id
            feed.version = version

    # --- announcements ---------------------------------------------------

    def deliver(self, channel: str, data: dict) -> None:
        kind, _, key = channel.partition(":")
        if kind == "lot":
            feed = self.feeds.get(int(key))
            if feed is not None:
                committed_at = data.get("committed_at")
                if committed_at and (feed.committed_at is None or committed_at > feed.committed_at):
                    feed.committed_at = committed_at
                self._mark(int(key), feed)
        elif kind == "user":
            sockets = self.users.get(int(key))
            if sockets:
                asyncio.get_running_loop().create_task(self._personal(int(key), data))

    def resync(self) -> None:
        """Announcements may have been lost: read every watched lot again."""
        for lot_id, feed in self.feeds.items():
            self._mark(lot_id, feed)

    def _mark(self, lot_id: int, feed: LotFeed) -> None:
        feed.dirty = True
        self._dirty.add(lot_id)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_dirty())

    def _due(self, now: float) -> tuple[dict[int, LotFeed], float | None]:
        """The dirty lots that may have a message now, and how long until the next one may."""
        count, window = message_window()
        due: dict[int, LotFeed] = {}
        wait = None
        for lot_id in list(self._dirty):
            feed = self.feeds.get(lot_id)
            if feed is None or not feed.dirty:
                self._dirty.discard(lot_id)
                continue
            if feed.newest_bid_id is None:
                # The first snapshot is still being read, perhaps from before this
                # change: read once it is in, so the change is shown either way.
                left = window / count
            elif len(feed.read_at) >= count:
                left = feed.read_at[-count] + window - now  # its window is full
            else:
                left = 0
            if left > 0:
                wait = left if wait is None else min(wait, left)
            else:
                due[lot_id] = feed
        return due, wait

    async def _read_dirty(self) -> None:
        spacing = 1.0 / settings.LIVE_READS_PER_SECOND
        try:
            while self._dirty:
                gather = self._last_read + spacing - time.monotonic()
                if gather > 0:
                    await asyncio.sleep(gather)  # the changes of a busy spell go in one read
                now = time.monotonic()
                due, wait = self._due(now)
                if not due:
                    if wait is not None:
                        await asyncio.sleep(wait)  # more announcements coalesce meanwhile
                    continue
                self._last_read = now
                committed = {}
                count, _ = message_window()
                for lot_id, feed in due.items():
                    feed.dirty = False
                    feed.read_at.append(now)
                    while len(feed.read_at) > count:
                        feed.read_at.popleft()
                    self._dirty.discard(lot_id)
                    committed[lot_id], feed.committed_at = feed.committed_at, None
                try:
                    changes = await self._read_lots({lot_id: feed.newest_bid_id for lot_id, feed in due.items()})
                except Exception:  # noqa: BLE001  (the next announcement or resync reads again)
                    logger.exception("live: reading lots %s failed", sorted(due))
                    continue
                for lot_id, feed in due.items():
                    change = changes.get(lot_id)
                    if change is None or self.feeds.get(lot_id) is not feed:  # unpublished, or no longer watched here
                        continue
                    try:
                        await self._show(feed, change, committed[lot_id])
                    except Exception:  # noqa: BLE001  (the other lots are still shown)
                        logger.exception("live: showing lot %s failed", lot_id)
        finally:
            self._reader = None

    async def _show(self, feed: LotFeed, change: dict, committed_at: float | None) -> None:
        if not change["bids"] and change["version"] == feed.version and change["lot"] == feed.shown:
            return  # nothing a watcher would see (a resync, a status job that changed nothing here)
        previous_version = feed.version
        feed.shown = change["lot"]
        feed.newest_bid_id = change["newest_bid_id"]
        feed.version = change["version"]
        message = {
            "type": "lot",
            "server_time": server_time(),
            "lot": change["lot"],
            "version": change["version"],
            "previous_version": previous_version,
            "bids": change["bids"],
            # When the newest change announced in it was committed: commit -> screen is measurable.
            "committed_at": datetime.fromtimestamp(committed_at, tz=timezone.get_default_timezone())
            if committed_at else None,
        }
        await self._broadcast(feed.watchers, message)

    async def _broadcast(self, sockets, message: dict) -> None:
        """Serialized once per origin (the cover URL is absolute to the host the socket used)."""
        by_origin: dict[Origin, list] = defaultdict(list)
        for socket in list(sockets):
            by_origin[socket.origin].append(socket)
        for origin, group in by_origin.items():
            lot = message["lot"]
            text = dumps({**message, "lot": {**lot, "cover": presenters.absolute(origin, lot["cover"])}})
            await self._send_all(group, text)

    async def _send_all(self, sockets, text: str) -> None:
        send_to_all(sockets, text, self._count_sent)

    def _count_sent(self, count: int) -> None:
        self.messages_sent += count

    async def _personal(self, user_id: int, data: dict) -> None:
        kind = data.get("type")
        sockets = list(self.users.get(user_id, ()))
        if not sockets:
            return
        origin = sockets[0].origin
        try:
            if kind == "outbid":
                body = {"lot_id": data["lot_id"], "price": data["price"]}
            elif kind == "won":
                body = {"lot_id": data["lot_id"], "order_no": data["order_no"]}
            elif kind == "deposit":
                deposit = await sync_to_async(reads.deposit, thread_sensitive=True)(data["deposit_id"], user_id)
                if deposit is None:
                    return
                body = {"deposit": deposit}
            elif kind == "order":
                order = await sync_to_async(reads.order, thread_sensitive=True)(data.get("order_id"), user_id, origin)
                if order is None:
                    return
                body = {"order": order}
            else:
                return
        except Exception:  # noqa: BLE001
            logger.exception("live: personal %s for user %s failed", kind, user_id)
            return
        await self._send_all(sockets, dumps({"type": kind, "server_time": server_time(), **body}))

    # --- watcher counts, for staff --------------------------------------

    async def _count_watchers(self) -> None:
        counts = counts_for_settings()
        while True:
            await asyncio.sleep(settings.LIVE_WATCHERS_SECONDS)
            try:
                await self._send_counts(counts)
            except Exception:  # noqa: BLE001  (the next tick tries again)
                logger.exception("live: counting watchers failed")

    async def _send_counts(self, counts) -> None:
        local = {lot_id: len(feed.watchers) - len(feed.staff) for lot_id, feed in self.feeds.items()
                 if len(feed.watchers) > len(feed.staff)}
        wanted = [lot_id for lot_id, feed in self.feeds.items() if feed.staff_told]
        totals = await counts.exchange(local, wanted)
        if not totals:
            return
        for lot_id in wanted:
            feed = self.feeds.get(lot_id)
            if feed is None or not feed.staff_told:
                continue  # unwatched while the counts were read
            count = totals[lot_id]
            sockets = set(feed.staff_told) if count != feed.staff_count else feed.staff_unsent & feed.staff_told
            feed.staff_count = count
            feed.staff_unsent.clear()
            if sockets:
                text = dumps({"type": "watchers", "server_time": server_time(), "lot_id": lot_id, "count": count})
                await self._send_all(sockets, text)

    def health(self) -> dict:
        return {
            "sockets": self.sockets,
            "staff_sockets": self.staff_sockets,
            "lots": len(self.feeds),
            "users": len(self.users),
            "messages_sent": self.messages_sent,
            "source": type(self.source).__name__ if self.source else None,
            "source_healthy": self.source.healthy if self.source else None,
        }


hub = Hub()
