"""Redis as a cache that is never needed for correctness.

Nothing in the cache is the only copy of anything: lot cards are rebuilt from
the database, throttle counters only slow clients down. So when Redis is
down, hung or refusing, a request must go on as if the cache were empty, and
quickly: every call has a short socket timeout (``AUCTION_CACHE_TIMEOUT_MS``),
and after one failure this process skips Redis altogether for
``AUCTION_CACHE_BREAKER_SECONDS`` (a circuit breaker), so a hung Redis costs
one request its timeout, not every request.

What each operation degrades to while Redis is unreachable:

- ``get`` → the default (a miss), ``get_many`` → ``{}``, ``has_key`` → False:
  the caller reads the database (lot cards) or counts nothing (throttles).
- ``set``/``set_many``/``touch``/``delete``/``delete_many``/``clear`` →
  nothing is stored or removed (``set_many`` reports every key as not set,
  ``touch`` and ``delete`` False). A value stored before the outage may be
  read after it: keys must carry what makes them stale (lot cards carry the
  lot's ``content_version``), never rely on a delete.
- ``add`` → True and ``incr``/``decr`` → ``delta`` (as if the counter had just
  started): throttles fail open, a client is let through rather than refused
  or answered 500. So ``add`` is no lock here, and never may be used as one.

The same failures are logged (a warning per trip of the breaker, not per call).
"""

import logging
import threading
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


class Breaker:
    """After a failure, skip the service for ``seconds``: per process, shared by
    its threads, so each process finds out for itself (one call per period)
    that the service is back."""

    def __init__(self, name: str, seconds: float, *, then: str = "skipping it for {seconds:.0f} s"):
        self.name = name
        self.seconds = seconds
        self.then = then
        self._open_until = 0.0
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        return self._open_until > time.monotonic()

    def failed(self, operation: str, error: BaseException) -> None:
        with self._lock:
            already_open = self.is_open()
            self._open_until = time.monotonic() + self.seconds
        if not already_open:
            logger.warning(
                "%s: %s failed (%s: %s); %s",
                self.name, operation, type(error).__name__, error, self.then.format(seconds=self.seconds),
            )


class DegradingRedisCache(RedisCache):
    """Django's RedisCache whose every operation falls back instead of raising.

    OPTIONS beyond Django's own: ``timeout_ms`` (connect and read timeout of
    every call) and ``breaker_seconds`` (how long to skip Redis after a failure).
    """

    def __init__(self, server, params):
        options = dict(params.get("OPTIONS") or {})
        timeout_seconds = float(options.pop("timeout_ms", 50)) / 1000
        self.breaker_seconds = float(options.pop("breaker_seconds", 5))
        options.setdefault("socket_connect_timeout", timeout_seconds)
        options.setdefault("socket_timeout", timeout_seconds)
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # One try per call: a retry only doubles what a dead Redis costs.
        options.setdefault("retry", Retry(NoBackoff(), 0))
        super().__init__(server, {**params, "OPTIONS": options})
        self.breaker = Breaker("cache (Redis)", self.breaker_seconds)

    def _call(self, operation: str, fallback, call):
        if self.breaker.is_open():
            return fallback
        try:
            return call()
        except Exception as error:  # noqa: BLE001  (any failure of Redis or its client: the cache is optional)
            self.breaker.failed(operation, error)
            return fallback

    def ping(self) -> None:
        """Raises when Redis does not answer: the one call that never degrades
        (/readyz, project/health.py), and that leaves the breaker as it is."""
        self._cache.get_client(write=True).ping()

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", True, lambda: super(DegradingRedisCache, self).add(key, value, timeout, version))

    def get(self, key, default=None, version=None):
        return self._call("get", default, lambda: super(DegradingRedisCache, self).get(key, default, version))

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", None, lambda: super(DegradingRedisCache, self).set(key, value, timeout, version))

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", False, lambda: super(DegradingRedisCache, self).touch(key, timeout, version))

    def delete(self, key, version=None):
        return self._call("delete", False, lambda: super(DegradingRedisCache, self).delete(key, version))

    def get_many(self, keys, version=None):
        return self._call("get_many", {}, lambda: super(DegradingRedisCache, self).get_many(keys, version))

    def has_key(self, key, version=None):
        return self._call("has_key", False, lambda: super(DegradingRedisCache, self).has_key(key, version))

    def incr(self, key, delta=1, version=None):
        # A missing key still raises ValueError, as Django's contract says:
        # that is the caller's logic, not Redis failing.
        if self.breaker.is_open():
            return delta
        try:
            return super().incr(key, delta, version)
        except ValueError:
            raise
        except Exception as error:  # noqa: BLE001
            self.breaker.failed("incr", error)
            return delta

    def decr(self, key, delta=1, version=None):
        return self.incr(key, -delta, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", list(data), lambda: super(DegradingRedisCache, self).set_many(data, timeout, version))

    def delete_many(self, keys, version=None):
        return self._call("delete_many", None, lambda: super(DegradingRedisCache, self).delete_many(keys, version))

    def clear(self):
        return self._call("clear", False, lambda: super(DegradingRedisCache, self).clear())
