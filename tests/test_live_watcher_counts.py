"""Watcher counts across ASGI processes (live/watchers.py), against a real Redis: two
processes' counts sum, a count that changes is rewritten, a process that stops
renewing drops out, a Redis that lost everything is refilled, a dead one fails nothing."""

import asyncio
import time
import uuid

from live.watchers import LocalCounts, RedisCounts
from tests.test_live_publishing import own_redis  # noqa: F401  (the fixture)

TTL = 2.0


def test_the_counts_of_two_processes_sum_and_a_silent_process_drops_out(own_redis, settings):  # noqa: F811
    process, client, port = own_redis
    settings.LIVE_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.LIVE_CHANNEL_PREFIX = f"test-{uuid.uuid4().hex[:10]}"
    settings.LIVE_WATCHERS_TTL_SECONDS = TTL

    async def run() -> None:
        one, two = RedisCounts(), RedisCounts()
        # given two processes, each with its own sockets
        assert await one.exchange({1: 3, 2: 1}, []) == {}
        # then one with staff watching sees the sum, its own counts as it holds them now
        assert await two.exchange({1: 2}, [1, 2, 3]) == {1: 5, 2: 1, 3: 0}
        # when a count changes and another drops to nothing: both written at once
        await one.exchange({1: 4}, [])
        assert await two.exchange({1: 2}, [1, 2]) == {1: 6, 2: 0}
        # when a process stops (it no longer renews): after the TTL it counts no more
        started = time.monotonic()
        await asyncio.sleep(TTL + 0.3)
        assert await two.exchange({1: 2}, [1]) == {1: 2}
        # when Redis loses everything (a restart), the next renewal puts each process back
        client.flushdb()
        await asyncio.sleep(TTL / 3 + 0.1)
        await one.exchange({1: 4}, [])
        assert await two.exchange({1: 2}, [1]) == {1: 6}
        assert time.monotonic() - started < 30
        # when Redis dies: no counts (staff keep the last), no exception, and no wait
        process.kill()
        process.wait(timeout=10)
        before = time.monotonic()
        assert await two.exchange({1: 2}, [1]) is None
        assert await two.exchange({1: 2}, [1]) is None  # left alone for a while, not asked again
        assert time.monotonic() - before < 5
        for counts in (one, two):
            await counts.client.aclose()

    asyncio.run(run())


def test_without_redis_the_counts_are_the_process_own():
    totals = asyncio.run(LocalCounts().exchange({1: 3}, [1, 2]))
    assert totals == {1: 3, 2: 0}
