"""Watchers per lot across every ASGI process, for staff sockets (the admin's Market tab).

Each process knows only its own sockets. Once every ``LIVE_WATCHERS_SECONDS``
the hub hands this module its counts (sockets watching each lot, staff
sockets not counted: they are not the audience) and the lots its staff
sockets watch, and gets back the totals across processes, which it sends to
those staff sockets where they changed. That tick is the coalescing: staff see
a count at most once a second, however fast phones come and go.

``RedisCounts`` (production, several ASGI processes): each process keeps a
hash of its own, ``<prefix>:watchers:<process>`` (lot id -> count), written
only where a count changed and rewritten whole with its TTL every third of
``LIVE_WATCHERS_TTL_SECONDS``, and its id in a sorted set scored by the time
it last did so. Totals are one HMGET per live process for the staff's lots,
in one pipeline. A process that dies stops renewing: its hash expires and the
set's score leaves it out. So a tick costs a write only when something
changed, a read only where staff watch, and nothing ever scans keys.

``LocalCounts`` (the embedded default: one ASGI process, no Redis): the
process's own counts are the totals.
"""

import logging
import time
import uuid

from django.conf import settings

logger = logging.getLogger(__name__)


class LocalCounts:
    async def exchange(self, local: dict[int, int], wanted: list[int]) -> dict[int, int] | None:
        return {lot_id: local.get(lot_id, 0) for lot_id in wanted}


class RedisCounts:
    def __init__(self) -> None:
        from auction.services.live import redis_channel

        self.process = uuid.uuid4().hex[:16]
        self.prefix = redis_channel("watchers")
        self.key = f"{self.prefix}:{self.process}"
        self.processes_key = f"{self.prefix}:processes"
        self.written: dict[int, int] = {}
        self.renewed = 0.0
        self.down_until = 0.0
        self.client = None

    def _client(self):
        if self.client is None:
            import redis.asyncio as redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # No retries: a Redis that fails is left alone for a few seconds instead (exchange).
            self.client = redis.Redis.from_url(settings.LIVE_REDIS_URL, socket_timeout=1, socket_connect_timeout=1,
                                               retry=Retry(NoBackoff(), 0))
        return self.client

    async def exchange(self, local: dict[int, int], wanted: list[int]) -> dict[int, int] | None:
        """The totals for ``wanted``; None when Redis is away (staff keep the count they have)."""
        if time.monotonic() < self.down_until:
            return None
        try:
            await self._write(local)
            if not wanted:
                return {}
            return await self._totals(local, wanted)
        except Exception as exc:  # noqa: BLE001  (a count is a glance; the sockets carry on)
            logger.warning("live: watcher counts in Redis failed (%s)", exc)
            self.down_until = time.monotonic() + 5.0
            self.renewed = 0.0  # rewrite the whole hash when Redis is back: it may have lost it
            return None

    async def _write(self, local: dict[int, int]) -> None:
        ttl = settings.LIVE_WATCHERS_TTL_SECONDS
        renew = time.monotonic() - self.renewed >= ttl / 3
        changed = {lot_id: count for lot_id, count in local.items() if self.written.get(lot_id) != count}
        gone = [lot_id for lot_id in self.written if lot_id not in local]
        if not (renew or changed or gone):
            return
        pipeline = self._client().pipeline(transaction=True)
        if renew:
            # Whole, so a hash Redis lost (a restart, an eviction) comes back within a third of the TTL.
            now = time.time()
            pipeline.delete(self.key)
            if local:
                pipeline.hset(self.key, mapping=local)
            pipeline.zadd(self.processes_key, {self.process: now})
            pipeline.zremrangebyscore(self.processes_key, "-inf", now - ttl)
            pipeline.expire(self.processes_key, int(ttl * 4))
        else:
            if changed:
                pipeline.hset(self.key, mapping=changed)
            if gone:
                pipeline.hdel(self.key, *gone)
        pipeline.expire(self.key, int(ttl))
        await pipeline.execute()
        self.written = dict(local)
        if renew:
            self.renewed = time.monotonic()

    async def _totals(self, local: dict[int, int], wanted: list[int]) -> dict[int, int]:
        ttl = settings.LIVE_WATCHERS_TTL_SECONDS
        alive = await self._client().zrangebyscore(self.processes_key, time.time() - ttl, "+inf")
        others = [process.decode() for process in alive if process.decode() != self.process]
        totals = {lot_id: local.get(lot_id, 0) for lot_id in wanted}
        if others:
            pipeline = self._client().pipeline(transaction=False)
            for process in others:
                pipeline.hmget(f"{self.prefix}:{process}", wanted)
            for counts in await pipeline.execute():
                for lot_id, count in zip(wanted, counts, strict=True):
                    if count is not None:
                        totals[lot_id] += int(count)
        return totals


def counts_for_settings() -> LocalCounts | RedisCounts:
    return RedisCounts() if settings.LIVE_REDIS_URL else LocalCounts()
