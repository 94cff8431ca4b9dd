"""How publishers' announcements reach this process: one subscription per channel.

``RedisSource``: redis-py's asyncio pub/sub, one connection per process,
subscribed to exactly the lots and users this process's sockets need.
``ChangeLogSource`` (the embedded default, no Redis): the ``LiveChange``
table, read every ``LIVE_POLL_SECONDS`` from the id last seen, so the job
process's changes arrive here too.

Either calls ``deliver(channel, data)`` for each announcement, and
``resync()`` after it may have missed some (a reconnect to Redis).
"""

import asyncio
import json
import logging
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from auction.models import LiveChange
from auction.services.live import redis_channel

logger = logging.getLogger(__name__)

Deliver = Callable[[str, dict], None]


class Source:
    healthy = True

    def __init__(self, deliver: Deliver, resync: Callable[[], None]) -> None:
        self.deliver = deliver
        self.resync = resync
        self.channels: set[str] = set()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def subscribe(self, channel: str) -> None:
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)

    async def run(self) -> None:
        raise NotImplementedError


class RedisSource(Source):
    def __init__(self, deliver: Deliver, resync: Callable[[], None]) -> None:
        super().__init__(deliver, resync)
        self.prefix = redis_channel("")
        self.pubsub = None
        # A command sent while the connection is being made would make redis-py's
        # PubSub open a second connection and read only that one: the first socket's
        # user channel, subscribed on the first, then never delivered (issue 19's
        # multi-process journey: A's `won` lost while its lots' messages arrived).
        # Commands wait for the connection under this lock.
        self.lock = asyncio.Lock()
        self.ready = False

    def _connect(self):
        import redis.asyncio as redis

        client = redis.Redis.from_url(settings.LIVE_REDIS_URL, socket_connect_timeout=2, health_check_interval=15)
        return client.pubsub(ignore_subscribe_messages=True)

    async def subscribe(self, channel: str) -> None:
        new = channel not in self.channels
        await super().subscribe(channel)
        if not new:
            return
        async with self.lock:
            if not self.ready or channel not in self.channels:
                return  # the reader subscribes to every channel when it (re)connects
            try:
                await self.pubsub.subscribe(redis_channel(channel))
            except Exception:  # noqa: BLE001  (the reader reconnects and subscribes to everything)
                self.healthy = False

    async def unsubscribe(self, channel: str) -> None:
        await super().unsubscribe(channel)
        async with self.lock:
            if not self.ready or channel in self.channels:
                return
            try:
                await self.pubsub.unsubscribe(redis_channel(channel))
            except Exception:  # noqa: BLE001
                self.healthy = False

    async def run(self) -> None:
        while True:
            try:
                async with self.lock:
                    self.pubsub = self._connect()
                    # A dummy channel keeps the connection subscribed while no socket watches anything.
                    await self.pubsub.subscribe(redis_channel("process"), *(redis_channel(c) for c in self.channels))
                    self.ready = True
                if not self.healthy:
                    self.resync()  # announcements sent while we were away are lost: read the state again
                self.healthy = True
                while True:
                    message = await self.pubsub.get_message(timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    channel = message["channel"].decode()[len(self.prefix) :]
                    self.deliver(channel, json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                if self.healthy:
                    logger.warning("live: Redis subscription lost (%s); reconnecting", exc)
                self.healthy = False
                self.ready = False
                try:
                    await self.pubsub.aclose()
                except Exception:  # noqa: BLE001
                    pass
                self.pubsub = None
                await asyncio.sleep(1.0)


def _changes_after(after_id: int | None, limit: int = 2000) -> list[tuple[int, str, dict]]:
    close_old_connections()
    if after_id is None:
        newest = LiveChange.objects.order_by("-id").values_list("id", flat=True).first() or 0
        return [(newest, "", {})]
    return list(LiveChange.objects.filter(id__gt=after_id).order_by("id").values_list("id", "channel", "data")[:limit])


class ChangeLogSource(Source):
    async def run(self) -> None:
        read = sync_to_async(_changes_after, thread_sensitive=True)
        after_id = None
        while True:
            try:
                rows = await read(after_id)
                if after_id is None:
                    after_id = rows[0][0]
                    rows = []
                if not self.healthy:
                    self.resync()
                self.healthy = True
                for row_id, channel, data in rows:
                    after_id = row_id
                    if channel in self.channels:
                        self.deliver(channel, data)
                if len(rows) >= 2000:
                    continue  # behind: read on at once
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                if self.healthy:
                    logger.warning("live: reading the change log failed (%s)", exc)
                self.healthy = False
            await asyncio.sleep(settings.LIVE_POLL_SECONDS)


def source_for_settings(deliver: Deliver, resync: Callable[[], None]) -> Source:
    return (RedisSource if settings.LIVE_REDIS_URL else ChangeLogSource)(deliver, resync)
