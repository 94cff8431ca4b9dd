"""Time the bid path in-process, one request at a time: where a bid's time goes.

    .venv/bin/python bench/bidpath.py [--n 500]

Runs after bench/bids.py has made the benchmark database (it reuses
``auction_bench`` and Redis db 14; override with DATABASE_URL / REDIS_URL),
adds its own special, lot, two users with held deposits, and sends requests
through the API's own handler as production serves it (project/wsgi.py: its
middleware chain, where a bid takes its direct route, Ninja, auth) with the test client,
no HTTP server: so every number here is the server's own cost with no
contention. For each kind of request it prints wall time, CPU time, the
queries it ran and what they cost, time in Redis, in django.request's log
line and in token lookup. Uncontended bids never take the lot's row lock
(a conditional write instead); when one does (proxies), the hold from the
start of SELECT ... FOR UPDATE to the end of COMMIT/ROLLBACK is printed too.
"""

import argparse
import io
import os
import statistics
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for key, value in {
    "DATABASE_URL": "mysql://root@127.0.0.1:3306/auction_bench",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "DJANGO_SETTINGS_MODULE": "project.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-not-secret-" + "k" * 50,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "AUCTION_SANDBOX": "1",
    # Two bidders taking turns as fast as the CPU goes: counted (its cost is
    # in the figures), never refused.
    "AUCTION_THROTTLE_BID": "100000000/10s",
    "CACHE_KEY_PREFIX": "bench",
    "Q_CLUSTER_NAME": "bench",
}.items():
    os.environ.setdefault(key, value)
if os.environ["DATABASE_URL"].rstrip("/").rsplit("/", 1)[-1] in ("auction",) or "/test_auction" in os.environ["DATABASE_URL"]:
    sys.exit("refusing to use that database")


class Probe:
    """Per-request timers, filled by the wrappers installed in ``install``."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.sql: list[tuple[str, float]] = []
        self.timers: dict[str, float] = defaultdict(float)
        self.lock_start: float | None = None
        self.lock_hold: float | None = None


PROBE = Probe()


def timed(name, fn, *, on_end=None):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            t1 = time.perf_counter()
            PROBE.timers[name] += t1 - t0
            if on_end:
                on_end(t0, t1)

    return wrapper


def install() -> None:
    import django.core.handlers.base as base_handler
    from django.db import connection

    import api.security
    import auction.selectors

    def execute_wrapper(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            t1 = time.perf_counter()
            PROBE.sql.append((sql, t1 - t0))
            PROBE.timers["db"] += t1 - t0
            if "FOR UPDATE" in sql and PROBE.lock_start is None:
                PROBE.lock_start = t0

    connection.execute_wrappers.append(execute_wrapper)

    def end_of_transaction(name):
        def on_end(t0, t1):
            PROBE.sql.append((name, t1 - t0))
            PROBE.timers["db"] += t1 - t0
            if PROBE.lock_start is not None and PROBE.lock_hold is None:
                PROBE.lock_hold = t1 - PROBE.lock_start

        return on_end

    # Round trips Django makes outside execute(): BEGIN (autocommit off), COMMIT, ROLLBACK.
    connection._commit = timed("_commit", connection._commit, on_end=end_of_transaction("COMMIT"))
    connection._rollback = timed("_rollback", connection._rollback, on_end=end_of_transaction("ROLLBACK"))
    original_autocommit = connection._set_autocommit

    def set_autocommit(value):
        t0 = time.perf_counter()
        try:
            return original_autocommit(value)
        finally:
            t1 = time.perf_counter()
            PROBE.sql.append((f"SET autocommit={int(value)}", t1 - t0))
            PROBE.timers["db"] += t1 - t0

    connection._set_autocommit = set_autocommit
    api.security.token_user = timed("token_user", api.security.token_user)
    base_handler.log_response = timed("log_response", base_handler.log_response)

    class TimedCache:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            attr = getattr(self._inner, name)
            return timed("redis", attr) if callable(attr) else attr

    auction.selectors.cache = TimedCache(auction.selectors.cache)


def seed():
    from django.utils import timezone

    from auction.models import Deposit, DepositScope, DepositStatus, Lot, Special, User
    from auction.services.tokens import token_issue

    now = timezone.now()
    special = Special.objects.create(
        title="bidpath special", preview_at=now - timedelta(hours=2), starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=6), extension_seconds=0, is_published=True,
    )
    lot = Lot.objects.create(special=special, title="bidpath lot", start_price=100_000, deposit=50_000, increment=1_000,
                             ends_at=special.ends_at, is_published=True)
    tokens = []
    stamp = int(time.time() * 1000)
    for i in range(2):
        user = User.objects.create(username=f"wx:bidpath-{stamp}-{i}", openid=f"bidpath-{stamp}-{i}", nickname=f"bidpath{i}")
        key = Deposit.key_for(user_id=user.pk, scope=DepositScope.LOT, special_id=special.pk, lot_id=lot.pk)
        Deposit.objects.create(user=user, scope=DepositScope.LOT, special=special, lot=lot, amount=lot.deposit,
                               status=DepositStatus.HELD, active_key=key)
        tokens.append(token_issue(user=user))
    return lot, tokens


def wsgi_bidder(lot, tokens: list[str]):
    """A function that sends one accepted bid to a WSGI callable as gunicorn would
    send it: the two seeded bidders take turns, each bid one step above the last
    (whichever callable took the one before); a refused bid ends the run."""
    state = {"price": lot.start_price - 1_000, "turn": 0}

    def one_bid(handler) -> None:
        state["turn"] += 1
        state["price"] += 1_000
        body = b'{"price": %d}' % state["price"]
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": f"/api/v1/lots/{lot.pk}/bids", "SCRIPT_NAME": "", "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": "Bearer " + tokens[state["turn"] % 2], "HTTP_HOST": "127.0.0.1",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        }
        statuses = []
        response = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
        content = b"".join(response)
        response.close()
        if not statuses[0].startswith("201"):
            sys.exit(f"bid refused: {statuses[0]} {content[:200]!r}")

    return one_bid


def summarize(name: str, samples: list[dict]) -> None:
    def col(key):
        values = [s[key] for s in samples if s[key] is not None]
        return (statistics.mean(values) * 1000, statistics.median(values) * 1000) if values else (float("nan"),) * 2

    print(f"\n== {name}: {len(samples)} requests, statuses {sorted({s['status'] for s in samples})}")
    for key, label in [
        ("wall", "wall time"),
        ("cpu", "CPU time (this thread)"),
        ("db", "MariaDB round trips (all statements + BEGIN/COMMIT)"),
        ("redis", "Redis (lot card)"),
        ("log_response", "django.request log line (4xx)"),
        ("python", "Python = wall - MariaDB - Redis - log"),
        ("token_user", "token lookup, inclusive"),
        ("lock_hold", "row lock held (FOR UPDATE start -> COMMIT end)"),
    ]:
        mean, median = col(key)
        print(f"  {label:<52} mean {mean:7.3f} ms  median {median:7.3f} ms")
    nq = [len(s["sql"]) for s in samples]
    print(f"  round trips per request: {min(nq)}..{max(nq)}")
    by_stmt = defaultdict(list)
    for s in samples:
        for i, (sql, dt) in enumerate(s["sql"]):
            by_stmt[(i, sql.split(" WHERE ")[0][:110])].append(dt)
    for (i, sql), dts in sorted(by_stmt.items()):
        if len(dts) >= len(samples) // 2:
            print(f"    {i:2d}. {statistics.mean(dts) * 1000:6.3f} ms  {sql}")


def run(client, n: int, build) -> list[dict]:
    samples = []
    for i in range(n):
        method, path, kwargs = build(i)
        PROBE.reset()
        t0, c0 = time.perf_counter(), time.thread_time()
        response = getattr(client, method)(path, **kwargs)
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        build.last = response
        t = PROBE.timers
        samples.append({
            "status": response.status_code, "wall": wall, "cpu": cpu, "db": t["db"], "redis": t["redis"],
            "log_response": t["log_response"], "token_user": t["token_user"],
            "python": wall - t["db"] - t["redis"] - t["log_response"],
            "lock_hold": PROBE.lock_hold, "sql": list(PROBE.sql),
        })
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    import logging

    import django

    django.setup()
    # The log line's cost is measured; its text would only flood the terminal.
    logging.getLogger("django.request").handlers = [logging.NullHandler()]
    logging.getLogger("django.request").propagate = False
    from django.db import connection
    from django.test import Client
    from django.test.client import ClientHandler

    from project.wsgi import ApiMiddlewareChain

    class ApiClientHandler(ApiMiddlewareChain, ClientHandler):
        pass

    lot, tokens = seed()
    install()
    client = Client()
    client.handler = ApiClientHandler()
    bids = f"/api/v1/lots/{lot.pk}/bids"
    state = {"next_min": lot.start_price}

    def accepted(i):
        last = build_accepted.last
        if last is not None:
            body = last.json()
            state["next_min"] = (body.get("lot") or body.get("detail") or {}).get("next_min_bid", state["next_min"])
        return "post", bids, {"data": {"price": state["next_min"]}, "content_type": "application/json",
                              "HTTP_AUTHORIZATION": f"Bearer {tokens[i % 2]}"}

    build_accepted = accepted
    build_accepted.last = None
    warm = run(client, 20, build_accepted)  # connections, caches, URLconf
    samples = run(client, args.n, build_accepted)
    summarize("POST bid, accepted (201), two bidders taking turns", samples)

    def too_low(i):
        return "post", bids, {"data": {"price": 100_000}, "content_type": "application/json",
                              "HTTP_AUTHORIZATION": f"Bearer {tokens[i % 2]}"}

    too_low.last = None
    summarize("POST bid, too low (409)", run(client, args.n, too_low))

    def specials(i):
        return "get", "/api/v1/specials?limit=1", {}

    specials.last = None
    summarize("GET /api/v1/specials?limit=1", run(client, args.n, specials))

    def detail(i):
        return "get", f"/api/v1/lots/{lot.pk}", {}

    detail.last = None
    summarize(f"GET /api/v1/lots/{lot.pk}", run(client, args.n, detail))
    del warm
    connection.close()


if __name__ == "__main__":
    main()
