"""``manage.py runjobs``: the Django-Q2 cluster, with schedules looked at every few seconds.

Django-Q2's own scheduler looks for due schedules about every 30 seconds;
a lot's settlement would wait up to that long after the hammer. A small
thread here runs the same scheduler function every ``--tick`` seconds. It is
safe beside any number of clusters: the scheduler locks each due schedule
row (SELECT ... FOR UPDATE) before it enqueues it and moves it on.
"""

import logging
import threading
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections
from django_q.brokers import get_broker
from django_q.cluster import Cluster
from django_q.scheduler import scheduler

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


class Command(BaseCommand):
    help = "Run the job cluster (qcluster) with prompt schedules."

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=2.0, help="seconds between looks at due schedules")

    def handle(self, *args, **options) -> None:
        from jobs.schedules import idempotency_purge_hourly, sweep_every_minute

        sweep_every_minute()
        idempotency_purge_hourly()
        # The cluster forks its processes from this one: none may inherit (and
        # later close) this process's database connection, and no thread may
        # be running yet when it forks.
        connections.close_all()
        cluster = Cluster()  # its SIGTERM/SIGINT handler stops the sentinel
        cluster.start()
        stop = threading.Event()
        ticker = threading.Thread(target=tick_forever, args=(stop, options["tick"]), name="schedule-tick", daemon=True)
        ticker.start()
        try:
            # Cluster.start() returns as soon as the sentinel runs (qcluster
            # lets the interpreter's exit join it), so wait for it here. Poll:
            # a blocking join would race the signal handler's own join.
            while cluster.sentinel is not None and cluster.sentinel.is_alive():
                time.sleep(0.5)
        finally:
            stop.set()
            ticker.join(timeout=10)
