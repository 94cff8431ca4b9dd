"""``manage.py runjobs``: the Django-Q2 cluster, with schedules looked at every few seconds.

Django-Q2's own scheduler looks for due schedules about every 30 seconds;
a lot's settlement would wait up to that long after the hammer. A small
thread here runs the same scheduler function every ``--tick`` seconds. It is
safe beside any number of clusters: the scheduler locks each due schedule
row (SELECT ... FOR UPDATE) before it enqueues it and moves it on.

The sweep is not queued at all: another thread here runs it every
``AUCTION_SWEEP_SECONDS`` (jobs/sweeper.py), so a backlog of thousands of
tasks never delays the recovery of what a lost task left undone.
"""

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections
from django_q.brokers import get_broker
from django_q.cluster import Cluster
from django_q.scheduler import scheduler

from jobs.sweeper import sweep_forever

logger = logging.getLogger(__name__)


def tick_forever(stop: threading.Event, every: float) -> None:
    broker = get_broker()
    while not stop.wait(every):
        try:
            scheduler(broker=broker)
        except Exception:
            logger.exception("schedule tick failed; the next one retries")
        finally:
            close_old_connections()


# SIGTERM asks the cluster to finish the tasks in hand; past this many seconds
# what is still running is killed (under systemd's TimeoutStopSec=90). Nothing
# is half done by that: each batch is one transaction, rolled back when its
# process dies, and the work it held is due again for the next start's sweep.
STOP_GRACE_SECONDS = float(os.environ.get("AUCTION_JOBS_STOP_GRACE", "20"))


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = [int(child) for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
        except OSError:
            children = []
        found.extend(children)
        frontier.extend(children)
    return found


class Command(BaseCommand):
    help = "Run the job cluster (qcluster) with prompt schedules."

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=2.0, help="seconds between looks at due schedules")
        parser.add_argument("--grace", type=float, default=STOP_GRACE_SECONDS, help="seconds SIGTERM waits for the tasks in hand")

    def handle(self, *args, **options) -> None:
        from django.utils import timezone

        from jobs.schedules import periodic

        # A cluster that starts sweeps at once: after a crash, the tasks it
        # had taken off the queue and never finished are done now, not at the
        # next minute.
        periodic(first_sweep=timezone.now())
        # The cluster forks its processes from this one: none may inherit (and
        # later close) this process's database connection, and no thread may
        # be running yet when it forks.
        connections.close_all()
        # qcluster's own handler joins the sentinel inside the signal handler,
        # which waits for every task already pulled off the broker: under a
        # backlog, far past any grace. Ours only asks, and the loop below
        # keeps the time. It replaces qcluster's before the cluster starts:
        # Cluster() installs that one, and start() returns only once the workers
        # already take tasks, so a SIGTERM in between (a loaded box, systemd
        # stopping a unit just started) hung the stop behind the whole backlog.
        cluster = Cluster()
        stop_asked: list[float] = []
        stopping: list[threading.Thread] = []

        def ask_to_stop(signum, frame) -> None:
            # Only a note here: setting the cluster's multiprocessing Event takes
            # a lock that a process killed by the same signal (systemd signals
            # the whole group) may have died holding, which would hang this one.
            if not stop_asked:
                stop_asked.append(time.monotonic())

        signal.signal(signal.SIGTERM, ask_to_stop)
        signal.signal(signal.SIGINT, ask_to_stop)
        cluster.start()
        stop = threading.Event()
        ticker = threading.Thread(target=tick_forever, args=(stop, options["tick"]), name="schedule-tick", daemon=True)
        ticker.start()
        # The sweep beside the workers, never behind the queue (jobs/sweeper.py).
        sweeper = threading.Thread(target=sweep_forever, args=(stop, min(options["tick"], 1.0)), name="sweep", daemon=True)
        sweeper.start()
        try:
            # Cluster.start() returns as soon as the sentinel runs (qcluster
            # lets the interpreter's exit join it), so wait for it here. Poll:
            # a blocking join would race the signal handler's own join.
            while cluster.sentinel is not None and cluster.sentinel.is_alive():
                time.sleep(0.2)
                if stop_asked and not stopping:
                    logger.info("stopping: finishing the tasks in hand for up to %.0f s", options["grace"])
                    stop.set()  # no new sweep; the one running finishes within the grace
                    stopping.append(threading.Thread(target=cluster.stop_event.set, name="stop", daemon=True))
                    stopping[0].start()
                if stop_asked and time.monotonic() - stop_asked[0] > options["grace"]:
                    logger.warning("tasks still running after %.0f s: killed; the next start's sweep carries on", options["grace"])
                    for pid in reversed(descendants(os.getpid())):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    break
        finally:
            stop.set()
            # A sweep still running has what is left of the grace; past it the
            # process exits under it, and its open transaction is rolled back
            # (each batch is one), to be done again by the next sweep.
            until = (stop_asked[0] + options["grace"]) if stop_asked else time.monotonic() + 10.0
            for thread in (sweeper, ticker):
                thread.join(timeout=max(until - time.monotonic(), 0.5))
            if sweeper.is_alive() or ticker.is_alive():
                logger.warning("the sweep (or a schedule tick) still running at the end of the grace: left to the next start")
            if stop_asked:
                logger.info("stopped %.1f s after the signal", time.monotonic() - stop_asked[0])
            if stop_asked or sweeper.is_alive() or ticker.is_alive():
                # Straight out, not through the interpreter's teardown: after a grace
                # kill it took 3 to 5 seconds more here, and it would close the
                # connections under a sweep still running. Nothing is left to flush:
                # the processes are gone, each transaction committed or rolled back
                # with its connection.
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
