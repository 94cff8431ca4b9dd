"""Counts the SQL statements of every process of a run (bench/settle.py).

On ``PYTHONPATH`` only for the cluster a benchmark starts, and only active
when ``SETTLE_COUNT_DIR`` is set: each process (the cluster forks its
workers, monitor and pusher) writes ``<pid>.json`` there at most once a
second, with its statements split into the domain's and Django-Q2's own
(broker polling, results, schedules). Works on any checkout, before or after
a change, because it hooks Django's ``connection_created`` signal and adds
an execute wrapper, nothing of the project's.
"""

import atexit
import json
import os
import time

DIRECTORY = os.environ.get("SETTLE_COUNT_DIR")

if DIRECTORY:
    from django.db.backends.signals import connection_created

    counts = {"domain": 0, "django_q": 0, "ormq_insert": 0}
    last_write = [0.0]

    def _write(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last_write[0] >= 1.0:
            last_write[0] = now
            path = os.path.join(DIRECTORY, f"{os.getpid()}.json")
            with open(path + ".tmp", "w") as handle:
                json.dump(counts, handle)
            os.replace(path + ".tmp", path)

    def _count(execute, sql, params, many, context):
        text = sql if isinstance(sql, str) else str(sql)
        if "django_q_" in text:
            counts["django_q"] += 1
            if text.lstrip().upper().startswith("INSERT") and "django_q_ormq" in text:
                counts["ormq_insert"] += 1
        else:
            counts["domain"] += 1
        try:
            return execute(sql, params, many, context)
        finally:
            _write()

    def _hook(sender, connection, **kwargs) -> None:
        if _count not in connection.execute_wrappers:
            connection.execute_wrappers.append(_count)

    connection_created.connect(_hook, weak=False)

    def _reset_in_child() -> None:
        # A forked worker starts its own count (the parent's is in its own file).
        for key in counts:
            counts[key] = 0
        last_write[0] = 0.0

    os.register_at_fork(after_in_child=_reset_in_child)
    atexit.register(_write, True)
