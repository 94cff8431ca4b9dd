"""The app's WSGI entry with timers, for bench/bids.py --instrument DIR (bench only).

    gunicorn -c deploy/gunicorn.conf.py --pythonpath bench instrumented_wsgi:application

Wraps project.wsgi's application without changing the app: per request it
records, in the serving thread, the wall time inside Django, the thread's
CPU time, every SQL round trip (statements, BEGIN, COMMIT, ROLLBACK), how
long the SELECT ... FOR UPDATE took (mostly the wait for the lock), how
long the row lock was then held (that statement's end to the end of
COMMIT/ROLLBACK) and, of that, the round trips and the thread's CPU, the
token lookup, Redis,
and Ninja's response rendering. Records go, batched, to
$BENCH_INSTRUMENT_DIR/<pid>.jsonl; bench/instrument_summary.py reads them.
"""

import atexit
import json
import os
import threading
import time

from project.wsgi import application as django_application  # noqa: E402  (runs django.setup())

OUT_DIR = os.environ.get("BENCH_INSTRUMENT_DIR", "/tmp")
_local = threading.local()
_buffer: list[str] = []
_buffer_lock = threading.Lock()
_last_flush = [time.monotonic()]


def _rec():
    return getattr(_local, "rec", None)


def _flush() -> None:
    with _buffer_lock:
        if not _buffer:
            return
        lines, _buffer[:] = list(_buffer), []
        _last_flush[0] = time.monotonic()
    with open(os.path.join(OUT_DIR, f"{os.getpid()}.jsonl"), "a") as f:
        f.write("".join(lines))


atexit.register(_flush)


def _timed(name, fn):
    def wrapper(*args, **kwargs):
        rec = _rec()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if rec is not None:
                rec[name] = rec.get(name, 0.0) + time.perf_counter() - t0

    return wrapper


def _execute_wrapper(execute, sql, params, many, context):
    rec = _rec()
    t0 = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        t1 = time.perf_counter()
        if rec is not None:
            rec["db"] += t1 - t0
            rec["queries"] += 1
            if "START TRANSACTION" in sql:
                # The one-round-trip write: the lot's lock is held inside it.
                rec["write_rt"] = rec.get("write_rt", 0.0) + t1 - t0
            elif "FROM auction_autobid a WHERE a.lot_id = l.id" in sql:
                rec["read_rt"] = rec.get("read_rt", 0.0) + t1 - t0
            if "lock_t1" in rec and "lock_hold" not in rec:
                rec["held_db"] += t1 - t0
                rec["held_queries"] += 1
            if "FOR UPDATE" in sql and "lock_t1" not in rec:
                rec["lock_t1"] = t1
                rec["lock_cpu0"] = time.thread_time()
                rec["lock_wait"] = t1 - t0
                rec["held_db"] = 0.0
                rec["held_queries"] = 0


def _end_transaction(fn):
    def wrapper(*args, **kwargs):
        rec = _rec()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            t1 = time.perf_counter()
            if rec is not None:
                rec["db"] += t1 - t0
                rec["commit"] = rec.get("commit", 0.0) + t1 - t0
                rec["queries"] += 1
                if "lock_t1" in rec and "lock_hold" not in rec:
                    rec["held_db"] += t1 - t0
                    rec["held_queries"] += 1
                    rec["lock_hold"] = t1 - rec["lock_t1"]
                    rec["held_cpu"] = time.thread_time() - rec["lock_cpu0"]

    return wrapper


def _round_trip(fn):
    def wrapper(*args, **kwargs):
        rec = _rec()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if rec is not None:
                rec["db"] += time.perf_counter() - t0
                rec["queries"] += 1

    return wrapper


def _on_connection_created(sender, connection, **kwargs):
    if getattr(connection, "_bench_wrapped", False):
        return
    connection._bench_wrapped = True
    connection.execute_wrappers.append(_execute_wrapper)
    connection._commit = _end_transaction(connection._commit)
    connection._rollback = _end_transaction(connection._rollback)
    connection._set_autocommit = _round_trip(connection._set_autocommit)


def _install() -> None:
    from django.db.backends.signals import connection_created
    from ninja import NinjaAPI

    import api.security
    import auction.selectors
    import project.urls  # noqa: F401  (load the URLconf now, so the patches below stick)

    connection_created.connect(_on_connection_created, weak=False)
    api.security.token_user = _timed("token", api.security.token_user)
    NinjaAPI.create_response = _timed("render", NinjaAPI.create_response)

    class TimedCache:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            attr = getattr(self._inner, name)
            return _timed("redis", attr) if callable(attr) else attr

    auction.selectors.cache = TimedCache(auction.selectors.cache)


_install()


def application(environ, start_response):
    rec = {"db": 0.0, "queries": 0}
    _local.rec = rec
    status_holder = []

    def _start_response(status, headers, exc_info=None):
        status_holder.append(status)
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        return django_application(environ, _start_response)
    finally:
        rec["wall"] = time.perf_counter() - t0
        rec["cpu"] = time.thread_time() - c0
        _local.rec = None
        rec.pop("lock_t1", None)
        rec.pop("lock_cpu0", None)
        rec["path"] = environ.get("PATH_INFO", "")
        rec["method"] = environ.get("REQUEST_METHOD", "")
        rec["status"] = int(status_holder[0].split()[0]) if status_holder else 0
        rec["t"] = time.time()
        with _buffer_lock:
            _buffer.append(json.dumps(rec) + "\n")
            full = len(_buffer) >= 200 or time.monotonic() - _last_flush[0] > 1.0
        if full:
            _flush()
