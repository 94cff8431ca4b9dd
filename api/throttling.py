"""Request limits: 429 ``throttled`` with ``Retry-After`` (CONTRACT.md, Errors).

Per user on what writes or costs (bids, proxy bids, deposits, coupon claims,
pay, quote); per client IP only where no user is known (logins, anonymous
reads), and loosely, since a mobile carrier puts many users behind one
address. Counted in the shared cache, so every worker and every machine
counts together: Redis in production, the database cache in the embedded
default (project/settings.py).

A fixed window per key: the window's number is in the key, so a counter
never needs resetting, only expiring. On Redis one hit is one command (a
script: INCR, and EXPIRE when the window is new); on the embedded default's
database cache (SQLite) one upsert; elsewhere ``cache.incr``, then
``cache.add`` when the window is new. A cache that fails lets the request through: a throttle is
a guard, and the database answers the request whatever the cache does.
"""

import logging
import re
import threading
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.http import HttpRequest
from django.utils import timezone
from ninja.throttling import BaseThrottle
from redis.exceptions import TimeoutError as RedisTimeoutError

from auction.models import User
from auction.services.tokens import TokenKey
from project.client_ip import client_ip

logger = logging.getLogger(__name__)

# Seconds since the epoch; tests move it instead of sleeping.
clock = time.time

_RATE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]*)\s*(s|m|h|d)\s*")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """``"30/10s"`` → (30 requests, per 10 seconds); units s, m, h, d."""
    match = _RATE.fullmatch(rate)
    if match is None or int(match[1]) < 1 or match[2] == "0":
        raise ImproperlyConfigured(f"a throttle rate is N/[k](s|m|h|d), like 30/10s or 300/m; not {rate!r}")
    return int(match[1]), int(match[2] or 1) * _UNIT_SECONDS[match[3]]


# INCR, and EXPIRE on the window's first hit: one command, atomic in Redis.
_REDIS_HIT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"


def _redis_connection(cache: RedisCache):
    # Django's cache builds a client per call and redis-py's client checks a
    # connection out of its pool, health-checks and returns it per command:
    # together most of the cost of a hit. The counter keeps one connection of
    # the same pool per cache object (that is, per thread) instead; it
    # reconnects by itself after a failure (``disconnect`` below).
    connection = getattr(cache, "_throttle_connection", None)
    if connection is None:
        pool = cache._cache.get_client(write=True).connection_pool
        connection = cache._throttle_connection = pool.make_connection()
    return connection


# The embedded default's cache is a table (django.core.cache.backends.db); its
# incr is a read, a count of the table and a write. One upsert instead,
# expired rows starting again at 1. The value column holds the count as text:
# only this function reads these keys, and the cache's own cull and clear
# delete them like any row.
_SQLITE_HIT = """
INSERT INTO {table} (cache_key, value, expires) VALUES (%s, '1', %s)
ON CONFLICT (cache_key) DO UPDATE SET
  value = CASE WHEN expires > %s THEN CAST(value AS INTEGER) + 1 ELSE 1 END,
  expires = CASE WHEN expires > %s THEN expires ELSE excluded.expires END
RETURNING value
"""


def _sqlite_count(cache: DatabaseCache, key: str, timeout: int) -> int | None:
    connection = connections[router.db_for_write(cache.cache_model_class)]
    if connection.vendor != "sqlite":
        return None
    now = timezone.now().replace(microsecond=0)
    expires = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=timeout))
    now = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_SQLITE_HIT.format(table=connection.ops.quote_name(cache._table)),
                       [cache.make_and_validate_key(key), expires, now, now])
        return int(cursor.fetchone()[0])


def _count(key: str, timeout: int) -> int:
    cache = caches["default"]
    if isinstance(cache, DatabaseCache):
        count = _sqlite_count(cache, key, timeout)
        if count is not None:
            return count
    if isinstance(cache, RedisCache):
        # The cache's own breaker (project/cache.py): a hung Redis costs one call
        # its timeout, then every counter skips it, as every other cache call does.
        breaker = getattr(cache, "breaker", None)
        if breaker is not None and breaker.is_open():
            raise ConnectionError("the cache's breaker is open")
        connection = _redis_connection(cache)
        try:
            connection.send_command("EVAL", _REDIS_HIT, 1, cache.make_key(key), timeout)
            return int(connection.read_response())
        except BaseException as error:
            connection.disconnect()
            # A hang (a timeout) trips it; a dropped connection only reconnects.
            if breaker is not None and isinstance(error, (TimeoutError, RedisTimeoutError)):
                breaker.failed("throttle counter", error)
            raise
    try:
        # Most hits find their window's counter: one call. (Not atomic on the
        # database cache: two workers at the same instant may count once.)
        return cache.incr(key)
    except ValueError:
        if cache.add(key, 1, timeout=timeout):
            return 1
        return cache.incr(key)


def window_hit(key: str, *, rate: str) -> float | None:
    """Count one request; the seconds to wait if it is over the rate, else None."""
    limit, window = parse_rate(rate)
    now = clock()
    index = int(now // window)
    try:
        count = _count(f"throttle:{key}:{index}", timeout=window + 1)
    except Exception:  # noqa: BLE001  (no cache: no limit, rather than no service)
        logger.warning("throttle counter unavailable; request let through", exc_info=True)
        return None
    if count <= limit:
        return None
    return (index + 1) * window - now


class Limit(BaseThrottle):
    """A named rate from settings (``""``: no limit), per what ``ident`` says.

    One object serves every thread of a worker: the wait Ninja asks for after
    a refusal is kept per thread.
    """

    def __init__(self, scope: str, setting: str):
        self.scope = scope
        self.setting = setting
        self._local = threading.local()
        rate = getattr(settings, setting)
        if rate:
            parse_rate(rate)  # a bad rate stops the start, not a request

    def ident(self, request: HttpRequest) -> str | None:
        raise NotImplementedError

    def check(self, request: HttpRequest) -> float | None:
        """The seconds to wait if this request is over the limit, else None (and it is counted)."""
        rate = getattr(settings, self.setting)
        ident = self.ident(request) if rate else None
        if ident is None:
            return None
        return window_hit(f"{self.scope}:{ident}", rate=rate)

    def allow_request(self, request: HttpRequest) -> bool:
        self._local.wait = self.check(request)
        return self._local.wait is None

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)


class PerUser(Limit):
    def ident(self, request: HttpRequest) -> str | None:
        caller = getattr(request, "auth", None)
        if isinstance(caller, User):
            return f"u{caller.pk}"
        if isinstance(caller, TokenKey):
            # The bid checks its token inside its own read of the lot, after
            # this: a token's hash stands for its user (at most
            # AUCTION_TOKENS_PER_USER of them).
            return f"t{caller.key_hash[:32]}"
        return None


class PerClientIP(Limit):
    def ident(self, request: HttpRequest) -> str | None:
        return client_ip(request) or None


class AnonymousPerClientIP(PerClientIP):
    """Reads without a token. With one, the read answers for its user (a bad
    token is a 401 from one indexed lookup), and many users share an address."""

    def ident(self, request: HttpRequest) -> str | None:
        if request.headers.get("Authorization"):
            return None
        return super().ident(request)


bids = PerUser("bid", "AUCTION_THROTTLE_BID")
auto_bids = PerUser("auto-bid", "AUCTION_THROTTLE_AUTO_BID")
deposits = PerUser("deposit", "AUCTION_THROTTLE_DEPOSIT")
coupon_claims = PerUser("coupon-claim", "AUCTION_THROTTLE_COUPON_CLAIM")
pays = PerUser("pay", "AUCTION_THROTTLE_PAY")
quotes = PerUser("quote", "AUCTION_THROTTLE_QUOTE")
logins = PerClientIP("login", "AUCTION_THROTTLE_LOGIN_IP")
anonymous_reads = AnonymousPerClientIP("read", "AUCTION_THROTTLE_ANONYMOUS_READ_IP")
