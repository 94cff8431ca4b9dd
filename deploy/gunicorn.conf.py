"""gunicorn for production: `gunicorn -c deploy/gunicorn.conf.py project.wsgi`.

Workers are stateless; every process reads the same MySQL and Redis, so
any number of them may run on any number of machines.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Threads overlap the waits on MySQL row locks under a hot lot.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn 27's control socket defaults to one path per machine; several
# instances on one host would fight over it, and nothing here uses it.
control_socket_disable = True
