"""``/healthz`` and ``/readyz`` for load balancers and orchestrators (README, "Health and metrics").

``/healthz`` says only that the process answers: no database, no cache, so a
database outage never makes a balancer restart every web process at once.
``/readyz`` says whether this process can do its work: the database, the
cache, the job broker and a job cluster's heartbeat (jobs/health.py, the
back office's rule too), and on a socket process the live source
(live/hub.py, as ``/ws/health`` shows it). 200 when every check passes, 503
when one fails; ``{"status": "ok"|"fail", "checks": {name: {"status": ...}}}``.

Every check runs in a thread of its own and is given
``AUCTION_READY_TIMEOUT_SECONDS``: a hung Redis or MySQL makes its check fail
with ``timeout``, never the probe hang. A check still stuck from an earlier
probe is not started again (it fails at once), so a hung server costs one
thread per check, not one per probe. Errors are named by their type only:
the answer is public, the log has the message.
"""

import logging
import sys
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

logger = logging.getLogger(__name__)

OK, FAIL = "ok", "fail"


def healthz(request: HttpRequest) -> JsonResponse:
    return _answer({"status": OK}, 200)


def _database() -> dict:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # This thread's own connection: never left open behind it.
        connections.close_all()
    return {"vendor": connections["default"].vendor}


def _cache() -> dict:
    cache = caches["default"]
    try:
        ping = getattr(cache, "ping", None)
        if ping is not None:
            ping()  # project/cache.py: the one call of the degrading cache that raises
        else:
            # A read, not a write: the embedded default's cache is a table, and
            # on SQLite a write would queue behind every other writer.
            cache.get("readyz:probe")
    finally:
        connections.close_all()  # the embedded default's cache is a table
    return {"backend": type(cache).__name__}


def _broker() -> dict:
    from django_q.brokers.redis_broker import Redis

    from jobs.health import broker

    try:
        found = broker()
        return {"broker": "redis" if isinstance(found, Redis) else "database", "queued": int(found.queue_size() or 0)}
    finally:
        connections.close_all()


def _jobs() -> dict:
    from jobs.health import cluster_heartbeat

    try:
        beat = cluster_heartbeat()
    finally:
        connections.close_all()
    detail = {
        "clusters": beat.clusters,
        "newest_heartbeat": beat.newest_stat_at.isoformat() if beat.newest_stat_at else None,
        "sweep_next_run": beat.sweep_next_run.isoformat() if beat.sweep_next_run else None,
    }
    if not beat.is_beating:
        raise _Failed("no job cluster has beaten its heartbeat or run the minute sweep for over a minute", detail)
    return detail


def _live() -> dict:
    from live.hub import hub

    health = hub.health()
    if health["source_healthy"] is False:
        raise _Failed("the live source is not connected", health)
    return health


class _Failed(Exception):
    def __init__(self, reason: str, detail: dict):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def checks() -> dict[str, Callable[[], dict]]:
    found = {"database": _database, "cache": _cache, "broker": _broker, "jobs": _jobs}
    live = sys.modules.get("live.hub")
    if live is not None and live.hub.source is not None:
        found["live"] = _live  # a socket process, serving sockets
    return found


# Checks still running from an earlier probe, by name (a hung server's).
_running: dict[str, threading.Thread] = {}
_running_lock = threading.Lock()


def run_checks(found: dict[str, Callable[[], dict]], timeout: float) -> dict[str, dict]:
    results: dict[str, dict] = {}
    threads: dict[str, threading.Thread] = {}

    def run(name: str, check: Callable[[], dict]) -> None:
        started = time.monotonic()
        try:
            outcome = {"status": OK, **check()}
        except _Failed as failed:
            outcome = {"status": FAIL, "error": failed.reason, **failed.detail}
        except Exception as error:  # noqa: BLE001  (whatever broke, this check failed; the log says how)
            logger.warning("readyz: %s failed: %s: %s", name, type(error).__name__, error)
            outcome = {"status": FAIL, "error": type(error).__name__}
        outcome["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        results[name] = outcome

    with _running_lock:
        for name, check in found.items():
            stuck = _running.get(name)
            if stuck is not None and stuck.is_alive():
                results[name] = {"status": FAIL, "error": "timeout", "detail": "the previous check has not returned yet"}
                continue
            thread = threading.Thread(target=run, args=(name, check), name=f"readyz-{name}", daemon=True)
            _running[name] = threads[name] = thread
            thread.start()
    deadline = time.monotonic() + timeout
    for name, thread in threads.items():
        thread.join(max(deadline - time.monotonic(), 0))
        if thread.is_alive():
            results[name] = {"status": FAIL, "error": "timeout", "elapsed_ms": round(timeout * 1000, 1)}
    return {name: results[name] for name in found}


def readyz(request: HttpRequest) -> JsonResponse:
    results = run_checks(checks(), settings.AUCTION_READY_TIMEOUT_SECONDS)
    ready = all(result["status"] == OK for result in results.values())
    body = {"status": OK if ready else FAIL, "checks": results, "time": timezone.now().isoformat()}
    return _answer(body, 200 if ready else 503)


def _answer(body: dict, status: int) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response
