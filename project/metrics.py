"""Prometheus metrics: ``/metrics`` on the site, ``/ws/metrics`` on the socket processes.

What is counted, and where:

- ``auction_http_requests_total{route, method, status}``: every answer, by the
  URL pattern of its path (``unmatched`` for a 404 no pattern took, so the
  label never grows with what clients send), in both middleware chains
  (``RequestMetricsMiddleware``, outermost); the bid's direct route
  (api/bid_route.py) names its pattern itself, and an answer given before
  URL resolution (a replay, a refusal at the edge) is counted under the
  pattern its path resolves to;
- ``auction_idempotent_replays_total{route}``: of those, the answers given
  again from an ``Idempotency-Key``'s stored answer (api/idempotency.py): the
  client hears the first answer again, and nothing was done again, so a
  replayed bid is not a bid accepted;
- ``auction_bid_seconds``: how long ``POST /lots/{id}/bids`` took, from the
  first middleware to the answer, whichever route took it (a replay too: the
  client waited for it);
- ``auction_bids_accepted_total{kind}``: every bid the market wrote, counted
  once its transaction commits (``auction.signals.bids_placed``), ``plain``
  for the bidder's own, ``proxy`` for a proxy's answer (to a bid, to a proxy
  set, or once a budget leaves room); a buy-now is an answer on its own
  route, not a bid here; ``auction_bids_refused_total{code}``: what the bid
  rules refused (api/bids.py), by the contract's code;
- ``auction_websocket_connections``: sockets the ASGI processes hold (live/hub.py);
- at scrape time, from the database and the broker (jobs/health.py):
  ``auction_jobs_queued`` (tasks waiting for a worker), ``auction_jobs_failed``
  (failed tasks kept), ``auction_jobs_clusters`` and ``auction_jobs_cluster_up``.

gunicorn's workers are processes: with ``PROMETHEUS_MULTIPROC_DIR`` set
(deploy/gunicorn.conf.py sets it), prometheus-client keeps each worker's
values in a memory-mapped file there and a scrape, answered by any worker,
sums them. Without it (``make run``, one process) the values are in memory.
"""

import glob
import hmac
import ipaddress
import logging
import os
import re
from functools import lru_cache
from time import perf_counter

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from auction import signals
from project.client_ip import client_ip

logger = logging.getLogger(__name__)

# A "_created" timestamp beside every counter doubles what a scrape carries,
# and multiprocess mode has none to give.
disable_created_metrics()

# The bid's URL pattern as Django's resolver names it (tests/test_metrics.py checks).
BID_ROUTE = "api/v1/lots/<int:lot_id>/bids"
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("auction_http_requests", "HTTP answers by URL pattern, method and status.", ["route", "method", "status"])
# A bid takes about a millisecond of CPU; a hot lot's queue, a slow disk or a
# lock wait moves it to tens or hundreds.
BID_SECONDS = Histogram(
    "auction_bid_seconds", "Time to answer POST /lots/{id}/bids (both routes).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BIDS_ACCEPTED = Counter(
    "auction_bids_accepted", "Bids the rules accepted and wrote: the bidder's own (plain) or a proxy's answer (proxy).", ["kind"]
)
_ACCEPTED_PLAIN, _ACCEPTED_PROXY = BIDS_ACCEPTED.labels("plain"), BIDS_ACCEPTED.labels("proxy")
IDEMPOTENT_REPLAYS = Counter(
    "auction_idempotent_replays", "Answers given again from an Idempotency-Key's stored answer (nothing done again), by URL pattern.",
    ["route"],
)
# The header a replay carries (api/idempotency.py): the answer says what it is.
REPLAYED_HEADER = "Idempotent-Replayed"
BIDS_REFUSED = Counter("auction_bids_refused", "Bids the rules refused, by the contract's error code.", ["code"])
# Each socket process sets its own count; a scrape sums the processes alive.
WEBSOCKETS = Gauge("auction_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum")


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class RequestMetricsMiddleware:
    """Counts every answer; times the bids. Outermost in both chains (project/settings.py)."""

    def __init__(self, get_response):
        self.get_response = get_response
        # (route, method, status) -> its counter: labels() takes a lock and
        # builds its key on every call; this lookup is a tenth of that.
        # Bounded: URL patterns x methods x statuses.
        self.counters: dict[tuple, object] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = perf_counter()
        response = self.get_response(request)
        route = _route(request, response)
        method = request.method if request.method in _METHODS else "other"
        key = (route, method, response.status_code)
        counter = self.counters.get(key)
        if counter is None:
            counter = self.counters[key] = REQUESTS.labels(route, method, str(response.status_code))
        counter.inc()
        if route == BID_ROUTE and method == "POST":
            BID_SECONDS.observe(perf_counter() - started)
        if response.has_header(REPLAYED_HEADER):
            IDEMPOTENT_REPLAYS.labels(route).inc()
        return response


def _route(request: HttpRequest, response: HttpResponse) -> str:
    match = request.resolver_match
    if match is not None:
        return match.route
    named = getattr(request, "metrics_route", None)
    if named is not None:
        return named
    if response.status_code == 404:
        return UNMATCHED  # Django's resolver took no pattern for it
    # Answered before URL resolution (a replay, a refusal at the edge): still an
    # answer on the path's pattern. Rare, so resolved here rather than on every request.
    try:
        return resolve(request.path_info, getattr(request, "urlconf", None)).route
    except Resolver404:
        return UNMATCHED


def bids_placed(sender, bids, **kwargs) -> None:
    """Counted after commit: a bid rolled back (its idempotency claim lost, say) was never accepted."""
    proxies = sum(1 for bid in bids if bid.is_auto)
    plain = len(bids) - proxies

    def count() -> None:
        if plain:
            _ACCEPTED_PLAIN.inc(plain)
        if proxies:
            _ACCEPTED_PROXY.inc(proxies)

    transaction.on_commit(count)


# Here, not in an app's ready(): every process that serves /metrics imports this
# module (its middleware) before its first request, and only those count.
signals.bids_placed.connect(bids_placed, dispatch_uid="project.metrics.bids_placed")


def bid_refused(code: str) -> None:
    BIDS_REFUSED.labels(code).inc()


def websockets_open(count: int) -> None:
    WEBSOCKETS.set(count)


# --- who may read them -------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple:
    networks = []
    for entry in allowed:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            logger.warning("AUCTION_METRICS_ALLOW_IPS: %r is not an address or a network; ignored", entry)
    return tuple(networks)


def may_read(*, address: str, authorization: str) -> bool:
    """The bearer token, when one is set, or an address in the allowlist."""
    token = settings.AUCTION_METRICS_TOKEN
    if token:
        scheme, _, sent = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
            return True
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(settings.AUCTION_METRICS_ALLOW_IPS)))


# --- the exposition ------------------------------------------------------------


class _ThisProcess:
    """The in-memory registry of this process (no multiprocess directory)."""

    def collect(self):
        return REGISTRY.collect()


class JobsCollector:
    """Read when scraped, not kept: the broker's queue and the failures are in
    the database or Redis, the same whichever process answers."""

    FAMILIES = {
        "auction_jobs_queued": "Tasks waiting in the broker for a worker.",
        "auction_jobs_failed": "Failed tasks kept (Django-Q2 keeps every failure).",
        "auction_jobs_clusters": "Job clusters whose heartbeat the broker holds.",
        "auction_jobs_cluster_up": "1 while a job cluster beats its heartbeat or runs the minute sweep (jobs/health.py).",
    }

    def describe(self):
        # Lets the registry register this without a collect() (which asks the database).
        return [GaugeMetricFamily(name, text) for name, text in self.FAMILIES.items()]

    def collect(self):
        from jobs import health

        readings = {
            "auction_jobs_queued": health.queued_tasks,
            "auction_jobs_failed": health.failed_tasks,
        }
        for name, read in readings.items():
            try:
                value = read()
            except Exception as error:  # noqa: BLE001  (an unreachable broker leaves its gauge out, not the scrape)
                logger.warning("metrics: %s not read (%s)", name, type(error).__name__)
                continue
            yield GaugeMetricFamily(name, self.FAMILIES[name], value=value)
        try:
            heartbeat = health.cluster_heartbeat()
        except Exception as error:  # noqa: BLE001
            logger.warning("metrics: the cluster's heartbeat not read (%s)", type(error).__name__)
            return
        yield GaugeMetricFamily("auction_jobs_clusters", self.FAMILIES["auction_jobs_clusters"], value=heartbeat.clusters)
        yield GaugeMetricFamily("auction_jobs_cluster_up", self.FAMILIES["auction_jobs_cluster_up"], value=int(heartbeat.is_beating))


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*_(\d+)\.db$")


def _forget_dead_processes(directory: str) -> None:
    """Live gauges of a process that died without gunicorn's child_exit (a
    uvicorn worker, a killed master) would be summed for ever."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        found = _LIVE_GAUGE_FILE.search(path)
        if not found:
            continue
        pid = int(found[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:
            pass  # alive, another user's


def exposition(*, jobs: bool = True) -> bytes:
    # No auto-describe: registering would collect once more (the jobs' queries) just to learn the names.
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        _forget_dead_processes(directory)
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    if jobs:
        registry.register(JobsCollector())
    return generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_read(address=client_ip(request), authorization=request.headers.get("Authorization", "")):
        return HttpResponse("Forbidden: not from an allowed address, and no valid token.\n", status=403, content_type="text/plain")
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response
