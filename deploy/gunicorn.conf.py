"""gunicorn for production: `gunicorn -c deploy/gunicorn.conf.py project.wsgi`.

Workers are stateless; every process reads the same MySQL and Redis, so
any number of them may run on any number of machines.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers behind nginx (deploy/nginx.conf): nginx keeps the clients'
# connections and buffers slow ones; each request reaches gunicorn on a
# connection of its own, and a sync worker takes one only when it is free. So
# every request waits in the one accept queue of the socket, in the order it
# came, and the first free worker takes the oldest: bids on a hot lot are
# judged in about the order they were sent, and no request waits behind a
# busy worker while another is idle. gthread workers each keep a queue of
# their own (the connections they accepted): on a hot lot a bid sent later
# overtakes an earlier one, which then can only be refused, and the tail of
# the latency grows with the longest queue (bench/README.md has both).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
# On 2 cores, 2 to 4 workers answered a hot lot best (bench/bids.py); a
# worker waiting on MariaDB or WeChat leaves its core to another.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))  # gthread only
timeout = 30
graceful_timeout = 30
keepalive = 5
# A worker restart is a whole Django + Wagtail start: keep them rare.
max_requests = 50000
max_requests_jitter = 5000
# nginx logs every request in front of us (deploy/nginx.conf); a second line
# per request here costs a hot lot ~5 % of its bids. GUNICORN_ACCESS_LOG=-
# turns it on (stdout) when gunicorn is reached directly.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn 27's control socket defaults to one path per machine; several
# instances on one host would fight over it, and nothing here uses it.
control_socket_disable = True

# Prometheus (project/metrics.py): each worker keeps its values in files in
# one directory, and /metrics, answered by any worker, sums them. Set here,
# in the master before any worker is forked or imports prometheus-client,
# one directory per master (two masters on one machine must not share one:
# each empties it at its start). PROMETHEUS_MULTIPROC_DIR overrides.
_metrics_name = "".join(ch if ch.isalnum() else "_" for ch in bind.split(",")[0])
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"auction-prometheus-{_metrics_name}"))


def post_worker_init(worker):
    # The worker has loaded the application: its heap is frozen (project/gc_tuning.py).
    from project.gc_tuning import tune_after_load

    tune_after_load()


def on_starting(server):
    # What the workers of a previous run counted is not this run's (prometheus-client's multiprocess docs).
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    # A worker gone (recycled, killed): its live gauges stop counting.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
