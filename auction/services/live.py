"""Live updates, the publishing side: a change is announced after its commit.

A publisher sends only *that* something changed (a lot's id and version, a
user's personal event); each ASGI process reads the lot's state itself, once
per burst for all its sockets (``live/hub.py``). So an accepted bid pays for
one small publish and nothing else, and the hub always shows what the
database holds: a message can never carry a state that was rolled back.

Publishing never fails a change: it runs in ``transaction.on_commit`` (after
the commit, or at once in autocommit), every error is logged and swallowed,
and a Redis that is down is not asked again for ``LIVE_PUBLISH_RETRY_SECONDS``
so a dead one costs a bid at most one connect timeout in that window.

Two transports, picked by the settings: Redis pub/sub (``REDIS_URL`` set,
production) or the ``LiveChange`` table (the embedded default), which every
ASGI process tails.
"""

import json
import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from auction.models import LiveChange

logger = logging.getLogger(__name__)

_redis_client = None
_redis_lock = threading.Lock()
_redis_down_until = 0.0


def lot_channel(lot_id: int) -> str:
    return f"lot:{lot_id}"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def redis_channel(channel: str) -> str:
    """The Redis pub/sub name of a channel: prefixed, so runs sharing a Redis never cross."""
    return f"{settings.LIVE_CHANNEL_PREFIX}:{channel}"


def live_lot_changed(*, lot_id: int, version: int | None = None, outbid_user_ids: tuple[int, ...] = (), price: int = 0,
                     outbid_before_bid_id: int | None = None) -> None:
    """A lot's market state changed; its watchers and the bidders it outbid are told after commit.

    ``outbid_before_bid_id``: the bid landed over bids it did not read, so the
    bidder it outbid is the author of the bid before it, looked up after commit.
    """
    if not settings.LIVE_ENABLED:
        return

    def publish() -> None:
        committed_at = time.time()
        _send(lot_channel(lot_id), {"lot_id": lot_id, "version": version, "committed_at": committed_at})
        outbid = set(outbid_user_ids)
        if outbid_before_bid_id is not None:
            previous = _author_of_bid_before(lot_id, outbid_before_bid_id)
            if previous is not None:
                outbid.add(previous)
        for user_id in sorted(outbid):
            _send(user_channel(user_id), {"type": "outbid", "lot_id": lot_id, "price": price})

    transaction.on_commit(publish)


def live_user_event(*, user_id: int | None, kind: str, **data: Any) -> None:
    """A personal event (``won``, ``deposit``, ``order``) for the user's own sockets, after commit."""
    if not settings.LIVE_ENABLED or not user_id:
        return
    transaction.on_commit(lambda: _send(user_channel(user_id), {"type": kind, **data}))


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


def _send(channel: str, data: dict) -> None:
    try:
        if settings.LIVE_REDIS_URL:
            _send_redis(channel, data)
        else:
            LiveChange.objects.create(channel=channel, data=data)
    except Exception:  # noqa: BLE001  (a lost message is a watcher's stale screen, never a failed bid)
        logger.exception("live: publishing %s failed", channel)


def _send_redis(channel: str, data: dict) -> None:
    global _redis_down_until
    if time.monotonic() < _redis_down_until:
        return
    try:
        _redis().publish(redis_channel(channel), json.dumps(data, separators=(",", ":")))
    except Exception:
        _redis_down_until = time.monotonic() + settings.LIVE_PUBLISH_RETRY_SECONDS
        raise


def _redis():
    global _redis_client
    if _redis_client is None:
        with _redis_lock:
            if _redis_client is None:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                timeout = settings.LIVE_PUBLISH_TIMEOUT_SECONDS
                # No retries: a bid waits for one short attempt at most.
                _redis_client = redis.Redis.from_url(
                    settings.LIVE_REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 0), health_check_interval=0,
                )
    return _redis_client


def _author_of_bid_before(lot_id: int, bid_id: int) -> int | None:
    from auction.models import Bid

    return (
        Bid.objects.filter(lot_id=lot_id, id__lt=bid_id).order_by("-id").values_list("user_id", flat=True).first()
    )


def live_changes_purge(*, older_than_seconds: int = 3600) -> int:
    """The change log is only read live; an hour is far more than any process lags."""
    from datetime import timedelta

    from django.utils import timezone

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    deleted, _ = LiveChange.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def live_publisher_reset() -> None:
    """For tests that move ``LIVE_REDIS_URL``: the next publish connects afresh."""
    global _redis_client, _redis_down_until
    _redis_client = None
    _redis_down_until = 0.0
