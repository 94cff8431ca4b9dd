"""Settings: Django-Q2's job cluster (``runjobs``; the schedules are jobs/schedules.py).

On the database as its broker in the embedded default, on Redis when
``REDIS_URL`` is set.
"""

import os

from project.settings_env import REDIS_URL, env_int

Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "auction"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": 60,
    # The database broker redelivers a task whose ack never came after
    # `retry` seconds: it must exceed `timeout` or a slow task runs twice.
    "retry": 90,
    "max_attempts": 3,
    # Successes: the last few per task function (an exact-time trigger's
    # result for ops); failures are always kept. With 1000 the monitor locked
    # up to 1000 rows per result saved: recording a big sale's end cost 2.5x
    # the work itself (issue 13).
    "save_limit": env_int("Q_SAVE_LIMIT", 10),
    "save_limit_per": "func",
    # Tasks pulled off the broker ahead of the workers: each is finished on
    # SIGTERM before the cluster stops, so keep few (the batch jobs are long).
    "queue_limit": env_int("Q_WORKERS", 2),
    "catch_up": False,
    "label": "Jobs",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
