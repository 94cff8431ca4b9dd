"""gunicorn for production: `gunicorn -c deploy/gunicorn.conf.py project.wsgi`.

Workers are stateless; every process reads the same MySQL and Redis, so
any number of them may run on any number of machines.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# bench/bids.py on 2 cores: 4 workers × 1 thread answered the most bids (a
# worker waiting on MariaDB leaves its core to another); threads share one GIL.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread"
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
