"""What Django-Q2's result saving costs per result: the monitor's CPU, wall time
and queries, before (``save_limit`` 1000 for all functions together, the
first settings) and now (project/settings_jobs.py's ``Q_CLUSTER``), issue 13.

The monitor saves each finished task with ``django_q.monitor.save_task``;
with a ``save_limit`` it first locks every success row the limit counts
(``SELECT ... FOR UPDATE``, each row made a model, its pickled result loaded)
and deletes the oldest. This calls that same function in-process, on a
results table already at the limit (the steady state of a busy cluster), for
task results of the functions a big sale's end runs, in turn.

    python bench/q2_results.py --db sqlite --results 300
    python bench/q2_results.py --db mysql --results 300 --config before=1000: --config now --config none=-1:

``--config label=LIMIT:PER`` (PER: func, group, name, or empty for one limit
over every function; ``now`` alone: the settings' values). Its own database
only: MariaDB ``auction_q2bench`` (dropped and made again), or a fresh SQLite
file; only Django-Q2's tables are made there. Prints a table and appends JSON
lines to ``--out``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FUNCS = (
    "jobs.tasks.lots_end", "jobs.tasks.refunds_submit", "jobs.tasks.refunds_poll", "jobs.tasks.special_deposits",
    "jobs.tasks.notifications_send", "jobs.tasks.orders_expire",
)


def parse_config(text: str, settings) -> tuple[str, int, str | None]:
    if text == "now":
        return "now", settings.Q_CLUSTER.get("save_limit", 250), settings.Q_CLUSTER.get("save_limit_per")
    label, _, spec = text.partition("=")
    limit, _, per = spec.partition(":")
    return label, int(limit), per or None


def prefill(limit: int, per: str | None, result: dict) -> int:
    """The results table as a busy cluster leaves it: at the limit for each counted set."""
    from django.utils import timezone
    from django_q.humanhash import uuid as task_uuid
    from django_q.models import Task

    Task.objects.all().delete()
    if limit <= 0:
        return 0
    now = timezone.now()
    sets = FUNCS if per == "func" else (None,)
    rows = []
    for func in sets:
        for n in range(limit):
            name, task_id = task_uuid()
            rows.append(Task(id=task_id, name=name, func=func or FUNCS[n % len(FUNCS)], args=(), kwargs={}, started=now,
                             stopped=now, result=result, success=True, attempt_count=1, group=None))
    Task.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def measure(label: str, limit: int, per: str | None, results: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from django_q.conf import Conf
    from django_q.humanhash import uuid as task_uuid
    from django_q.models import Task
    from django_q.monitor import save_task

    result = {"lots_settled": 100, "refunds": 900}  # the size of a batch job's report
    rows_before = prefill(limit, per, result)
    Conf.SAVE_LIMIT, Conf.SAVE_LIMIT_PER = limit, per
    tasks = []
    for n in range(results):
        name, task_id = task_uuid()
        now = timezone.now()
        tasks.append({"id": task_id, "name": name, "func": FUNCS[n % len(FUNCS)], "args": (), "kwargs": {}, "started": now,
                      "stopped": now, "result": result, "success": True, "group": None, "ack_id": None})
    cpu, wall = time.process_time(), time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        for task in tasks:
            save_task(task, None)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "label": label, "save_limit": limit, "save_limit_per": per, "db": connection.vendor, "results": results,
        "rows_at_start": rows_before, "rows_at_end": Task.objects.count(),
        "cpu_ms_per_result": round(cpu * 1000 / results, 2), "wall_ms_per_result": round(wall * 1000 / results, 2),
        "queries_per_result": round(len(queries) / results, 2),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("mysql", "sqlite"), default="sqlite")
    parser.add_argument("--results", type=int, default=300, help="results saved per configuration")
    parser.add_argument("--config", action="append", help="label=LIMIT:PER, or now (repeatable; default: before=1000: and now)")
    parser.add_argument("--mysql-database", default="auction_q2bench")
    parser.add_argument("--out", default=str(HERE / "results" / "q2_results.jsonl"))
    args = parser.parse_args()

    for key in [key for key in os.environ if key.startswith(("REDIS", "Q_", "DATABASE_URL"))]:
        del os.environ[key]  # the ORM broker's settings; nothing here reaches Redis
    if args.db == "mysql":
        if args.mysql_database in ("auction",) or args.mysql_database.startswith("test_"):
            sys.exit(f"refusing to use {args.mysql_database}: give the bench its own database")
        subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", f"DROP DATABASE IF EXISTS {args.mysql_database}; CREATE DATABASE "
                        f"{args.mysql_database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"], check=True)
        os.environ["DATABASE_URL"] = f"mysql://root@127.0.0.1:3306/{args.mysql_database}"
    else:
        database = Path(tempfile.mkdtemp(prefix="q2bench-")) / "q2.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ["AUCTION_VAR_DIR"] = tempfile.mkdtemp(prefix="q2bench-var-")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django_q.models import OrmQ, Schedule, Task

    with connection.schema_editor() as editor:  # Django-Q2's tables only, not the project's migrations
        for model in (Task, Schedule, OrmQ):
            editor.create_model(model)
    rows = [measure(*parse_config(text, settings), args.results) for text in (args.config or ["before=1000:", "now"])]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    print(f"{'config':<10} {'limit':>6} {'per':<6} {'cpu ms/result':>14} {'wall ms/result':>15} {'queries/result':>15}")
    for row in rows:
        print(f"{row['label']:<10} {row['save_limit']:>6} {row['save_limit_per'] or '-':<6} {row['cpu_ms_per_result']:>14} "
              f"{row['wall_ms_per_result']:>15} {row['queries_per_result']:>15}")


if __name__ == "__main__":
    main()
