"""Fan-out in one ASGI process: one subscription per watched lot, one read per burst.

An announcement says only that a lot changed. The hub marks the lot dirty and
reads it (state and new bids) at most ``LIVE_MESSAGES_PER_SECOND`` times a
second, once for all of this process's sockets that watch it, so a burst of
bids becomes a few messages, each with the newest state and the bids since
the previous one. An announcement that comes while a read is running makes
another read follow it: the last message always shows the last commit.
"""

import asyncio
import json
import logging
import time
from collections import defaultdict
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
from live.sources import Source, source_for_settings
from project import metrics

logger = logging.getLogger(__name__)


class Socket(Protocol):
    user_id: int | None
    origin: Origin
    client_ip: str
    last_heard: float  # time.monotonic() of the last message from the client

    async def send_text(self, text: str) -> None: ...

    async def close_idle(self) -> None: ...


def dumps(message: dict) -> str:
    return json.dumps(message, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


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
    last_read: float = 0.0
    reading: asyncio.Task | None = None


class Hub:
    def __init__(self) -> None:
        self.feeds: dict[int, LotFeed] = {}
        self.users: dict[int, set] = defaultdict(set)
        self.sockets_by_ip: dict[str, int] = defaultdict(int)
        self.sockets = 0
        self.joined: set = set()
        self.messages_sent = 0
        self.source: Source | None = None
        self._read_lots = sync_to_async(reads.lot_changes, thread_sensitive=True)

    # --- sockets ---------------------------------------------------------

    def _source(self) -> Source:
        if self.source is None:
            self.source = source_for_settings(self.deliver, self.resync)
            self.source.start()
            asyncio.get_running_loop().create_task(self._resync_now_and_then())
            asyncio.get_running_loop().create_task(self._close_idle_sockets())
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
        return feed

    async def unwatch(self, socket: Socket, lot_ids: set[int]) -> None:
        for lot_id in lot_ids:
            feed = self.feeds.get(lot_id)
            if feed is None:
                continue
            feed.watchers.discard(socket)
            if not feed.watchers:
                del self.feeds[lot_id]
                if feed.reading is not None:
                    feed.reading.cancel()
                await self._source().unsubscribe(lot_channel(lot_id))

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
        if feed.reading is None:
            feed.reading = asyncio.get_running_loop().create_task(self._read(lot_id, feed))

    async def _read(self, lot_id: int, feed: LotFeed) -> None:
        interval = 1.0 / settings.LIVE_MESSAGES_PER_SECOND
        try:
            while feed.dirty:
                wait = feed.last_read + interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # more announcements coalesce meanwhile
                if feed.newest_bid_id is None:
                    # The first snapshot is still being read, perhaps from before this
                    # change: read once it is in, so the change is shown either way.
                    feed.last_read = time.monotonic()
                    continue
                feed.dirty = False
                feed.last_read = time.monotonic()
                committed_at = feed.committed_at
                feed.committed_at = None
                try:
                    changes = await self._read_lots({lot_id: feed.newest_bid_id})
                except Exception:  # noqa: BLE001  (the next announcement or resync reads again)
                    logger.exception("live: reading lot %s failed", lot_id)
                    continue
                change = changes.get(lot_id)
                if change is None:
                    continue
                if not change["bids"] and change["version"] == feed.version and change["lot"] == feed.shown:
                    continue  # nothing a watcher would see (a resync, a status job that changed nothing here)
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
        finally:
            feed.reading = None

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
        results = await asyncio.gather(*(socket.send_text(text) for socket in sockets), return_exceptions=True)
        self.messages_sent += sum(1 for result in results if not isinstance(result, BaseException))

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

    def health(self) -> dict:
        return {
            "sockets": self.sockets,
            "lots": len(self.feeds),
            "users": len(self.users),
            "messages_sent": self.messages_sent,
            "source": type(self.source).__name__ if self.source else None,
            "source_healthy": self.source.healthy if self.source else None,
        }


hub = Hub()
