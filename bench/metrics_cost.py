"""What the Prometheus metrics cost a bid, in-process (project/metrics.py).

    DATABASE_URL=mysql://root@127.0.0.1:3306/auction_x REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/metrics_cost.py [--n 4000] [--multiprocess]

Accepted bids, two bidders taking turns on a fresh lot, sent as gunicorn would
send them to the API's own WSGI handler (project/wsgi.py), alternating blocks
of 200 through two handlers built side by side: the chain as shipped
(RequestMetricsMiddleware outermost, the bid counted once written, through
``auction.signals.bids_placed``) and the same chain without either. Prints
the median of this thread's CPU time per bid for each, and their ratio.
``--multiprocess`` runs prometheus-client as gunicorn's workers do (values in
memory-mapped files, PROMETHEUS_MULTIPROC_DIR in a temporary directory). The database must be migrated (``manage.py migrate``).
Then the metric operations alone, timed with timeit.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import timeit
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("set DATABASE_URL (a migrated database of your own; a lot and two users are added to it)")
    if args.multiprocess:
        # Before prometheus-client is imported: it picks its value class then.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-cost-")
    for key, value in {
        "DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-" + "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SECURE_SSL_REDIRECT": "0", "AUCTION_SANDBOX": "1",
        "AUCTION_THROTTLE_BID": "100000000/10s", "CACHE_KEY_PREFIX": "metrics-cost", "Q_CLUSTER_NAME": "metrics-cost",
    }.items():
        os.environ.setdefault(key, value)

    import django

    django.setup()
    from django.conf import settings

    import api.bids
    from auction import signals
    from project import metrics
    from project.wsgi import ApiWSGIHandler

    bidpath = import_bidpath()
    lot, tokens = bidpath.seed()
    with_metrics = ApiWSGIHandler()
    shipped = settings.API_MIDDLEWARE
    settings.API_MIDDLEWARE = [path for path in shipped if path != "project.metrics.RequestMetricsMiddleware"]
    without_metrics = ApiWSGIHandler()
    settings.API_MIDDLEWARE = shipped
    no_counting = types.SimpleNamespace(bid_refused=lambda code: None)
    one_bid = bidpath.wsgi_bidder(lot, tokens)

    def block(handler, counting) -> float:
        api.bids.metrics = counting
        if counting is metrics:
            signals.bids_placed.connect(metrics.bids_placed, dispatch_uid="project.metrics.bids_placed")
        else:
            signals.bids_placed.disconnect(dispatch_uid="project.metrics.bids_placed")
        c0 = time.thread_time()
        for _ in range(200):
            one_bid(handler)
        return (time.thread_time() - c0) / 200 * 1e6

    for _ in range(50):
        one_bid(with_metrics)
        one_bid(without_metrics)
    cpu_with, cpu_without = [], []
    for _ in range(max(args.n // 400, 1)):
        cpu_with.append(block(with_metrics, metrics))
        cpu_without.append(block(without_metrics, no_counting))
    api.bids.metrics = metrics
    signals.bids_placed.connect(metrics.bids_placed, dispatch_uid="project.metrics.bids_placed")
    a, b = statistics.median(cpu_with), statistics.median(cpu_without)
    mode = "multiprocess (mmap files)" if args.multiprocess else "in memory"
    print(f"prometheus-client {mode}: CPU per accepted bid with metrics {a:.0f} µs, without {b:.0f} µs, "
          f"ratio {a / b:.3f} ({(a / b - 1) * 100:+.1f} %), medians of {len(cpu_with)} blocks of 200 each")

    # The metric operations alone: what the middleware and the view add per bid.
    counter = metrics.REQUESTS.labels(metrics.BID_ROUTE, "POST", "201")
    accepted = metrics.BIDS_ACCEPTED.labels("plain")
    per_bid = timeit.Timer(lambda: (counter.inc(), metrics.BID_SECONDS.observe(0.001), accepted.inc()))
    loops = 100_000
    best = min(per_bid.repeat(repeat=5, number=loops)) / loops * 1e6
    print(f"  the three metric updates of a bid alone (timeit, best of 5 x {loops:,}): {best:.2f} µs")


def import_bidpath():
    sys.path.insert(0, str(ROOT / "bench"))
    import bidpath  # its seed (a special, a lot, two users with held deposits) and its WSGI bid

    return bidpath


if __name__ == "__main__":
    main()
