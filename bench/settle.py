"""Settlement at the scale of a big sale, through the real job cluster.

Seeds one special with N lots, 10 held lot deposits and a few bids on each,
every lot ending at one instant, starts ``manage.py runjobs`` (the
production worker count, Q_WORKERS=2) and watches the database: seconds from
the end to the last order, the last refund submitted and the last refund
completed (sandbox gateway), with the queries and tasks per lot and the CPU
of the cluster.

    python bench/settle.py --db mysql --lots 500              # this checkout
    python bench/settle.py --db sqlite --lots 500 --code /tmp/settle-before

``--code`` runs another checkout's cluster and seeding (a worktree of an
older commit: the before of a before/after), with this file's counting.
MariaDB: database ``auction_settlebench``; Redis: the one on
``--redis-port`` (start your own: ``redis-server --port 18990 --save ""
--appendonly no --daemonize yes``), so its ``INFO commandstats`` counts
this run's enqueues only. SQLite: a fresh file and the database broker.

Prints a summary and appends one JSON line to ``--out``.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COUNT_DIR_HOOK = HERE / "settle_count"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- seeding: runs as ``settle.py seed`` inside the checkout under test ---------------


def seed(args) -> None:
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password  # noqa: F401  (app registry loaded)
    from django.db import transaction
    from django.utils import timezone

    from auction import signals
    from auction.models import (
        Bid,
        Deposit,
        DepositScope,
        DepositStatus,
        Lot,
        LotStatus,
        Payment,
        PaymentPurpose,
        PaymentStatus,
        Special,
        User,
    )

    run = uuid.uuid4().hex[:8]
    lots_count, per_lot, bids_per_lot = args.lots, args.deposits_per_lot, args.bids
    ends_at = timezone.now() + timedelta(seconds=args.lead)
    started = time.monotonic()
    with transaction.atomic():
        special = Special.objects.create(
            title=f"settle bench {run}", description="<p>bench</p>", preview_at=ends_at - timedelta(hours=3),
            starts_at=ends_at - timedelta(hours=2), ends_at=ends_at, deposit=0, extension_seconds=0, stagger_seconds=0,
            is_published=True, status="bidding",
        )
        lots = Lot.objects.bulk_create(
            [
                Lot(special=special, title=f"lot {k}", description="<p>lot</p>", position=k, start_price=100_000,
                    deposit=50_000, increment=1_000, ends_at=ends_at, is_published=True, status=LotStatus.BIDDING)
                for k in range(lots_count)
            ],
            batch_size=500,
        )
        if not lots[0].pk:  # MariaDB before RETURNING support for bulk_create
            lots = list(Lot.objects.filter(special=special).order_by("position"))
        users = User.objects.bulk_create(
            [User(username=f"b{run}{n}", openid=f"o{run}{n}") for n in range(lots_count * per_lot)], batch_size=1000
        )
        if not users[0].pk:
            users = list(User.objects.filter(username__startswith=f"b{run}").order_by("pk"))
        deposits, bids = [], []
        for k, lot in enumerate(lots):
            holders = users[k * per_lot:(k + 1) * per_lot]
            for user in holders:
                deposits.append(Deposit(user=user, scope=DepositScope.LOT, special=special, lot=lot, amount=50_000,
                                        status=DepositStatus.HELD, active_key=Deposit.key_for(user_id=user.pk, scope="lot", special_id=special.pk, lot_id=lot.pk)))
            price = lot.start_price
            for b in range(bids_per_lot):
                bids.append(Bid(lot=lot, user=holders[b % len(holders)], price=price))
                price += lot.increment
            lot.current_price = price - lot.increment
            lot.leader = holders[(bids_per_lot - 1) % len(holders)]
            lot.bid_count = bids_per_lot
        Deposit.objects.bulk_create(deposits, batch_size=1000)
        deposits = list(Deposit.objects.filter(special=special).order_by("pk"))
        paid_at = timezone.now()
        Payment.objects.bulk_create(
            [
                Payment(out_trade_no=f"D{run}{d.pk}", purpose=PaymentPurpose.DEPOSIT, user_id=d.user_id, amount=d.amount,
                        deposit=d, status=PaymentStatus.PAID, gateway="sandbox", transaction_id=f"T{run}{d.pk}",
                        expires_at=paid_at + timedelta(minutes=15), paid_at=paid_at)
                for d in deposits
            ],
            batch_size=1000,
        )
        Bid.objects.bulk_create(bids, batch_size=1000)
        Lot.objects.bulk_update(lots, ["current_price", "leader", "bid_count"], batch_size=500)
        # What publishing announces: the special's phases and each lot's end,
        # so the checkout's own receivers write its schedules.
        signals.special_times_changed.send(sender=Special, special_id=special.pk)
        for lot in lots:
            signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=ends_at)
    print(json.dumps({"special_id": special.pk, "ends_at": ends_at.timestamp(), "seed_seconds": round(time.monotonic() - started, 1)}))


# --- watching: runs as ``settle.py progress`` inside the checkout under test ---------


def progress(args) -> None:
    """Print, once per line read on stdin, the special's counts as JSON (one process, one connection)."""
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    from django.db import close_old_connections
    from django.db.models import Count, Max, Min, Q

    from auction.models import Lot, Order, Refund

    special_id = args.special
    for line in sys.stdin:
        if line.strip() == "final":
            # From the rows' own times: what the cluster did, not when this poll saw it.
            ends_at = Lot.objects.filter(special_id=special_id).aggregate(at=Max("ends_at"))["at"]
            orders = Order.objects.filter(lot__special_id=special_id).aggregate(first=Min("created_at"), last=Max("created_at"))
            refunds = Refund.objects.filter(payment__deposit__special_id=special_id).aggregate(
                first_submitted=Min("submitted_at"), last_submitted=Max("submitted_at"), last_completed=Max("completed_at"))
            print(json.dumps({key: round((value - ends_at).total_seconds(), 1) if value else None for key, value in
                              {"first_order": orders["first"], "last_order": orders["last"], **refunds}.items()}), flush=True)
            continue
        refunds = Refund.objects.filter(payment__deposit__special_id=special_id).aggregate(
            created=Count("pk"), submitted=Count("pk", filter=~Q(status="pending")), completed=Count("pk", filter=Q(status="succeeded")),
            failed=Count("pk", filter=Q(status="failed")),
        )
        row = {
            "settled": Lot.objects.filter(special_id=special_id).exclude(status__in=("upcoming", "preview", "bidding")).count(),
            "orders": Order.objects.filter(lot__special_id=special_id).count(),
            **refunds,
        }
        print(json.dumps(row), flush=True)
        close_old_connections()


# --- the run ---------------------------------------------------------------------


def cluster_cpu_seconds(root_pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    pids, frontier = [], [root_pid]
    while frontier:
        pid = frontier.pop()
        pids.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        frontier.extend(int(child) for child in children)
    total = 0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def redis_enqueues(port: int) -> int:
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "commandstats"], capture_output=True, text=True).stdout
    total = 0
    for line in out.splitlines():
        if line.startswith(("cmdstat_rpush:", "cmdstat_lpush:")):
            total += int(line.split("calls=")[1].split(",")[0])
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    seeding = sub.add_parser("seed")
    seeding.add_argument("--lots", type=int, required=True)
    seeding.add_argument("--deposits-per-lot", type=int, default=10)
    seeding.add_argument("--bids", type=int, default=3)
    seeding.add_argument("--lead", type=float, default=30.0)
    watching = sub.add_parser("progress")
    watching.add_argument("--special", type=int, required=True)
    parser.add_argument("--db", choices=("mysql", "sqlite"), default="mysql")
    parser.add_argument("--lots", type=int, default=500)
    parser.add_argument("--deposits-per-lot", type=int, default=10)
    parser.add_argument("--bids", type=int, default=3)
    parser.add_argument("--code", default=str(ROOT), help="the checkout whose cluster runs")
    parser.add_argument("--label", default="")
    parser.add_argument("--lead", type=float, default=30.0, help="seconds from the seed to the end: the cluster starts meanwhile")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after the end to give up waiting")
    parser.add_argument("--redis-port", type=int, default=18990)
    parser.add_argument("--mysql-database", default="auction_settlebench")
    parser.add_argument("--fresh", action="store_true", help="drop and migrate the database first")
    parser.add_argument("--out", default=str(HERE / "results" / "settle.jsonl"))
    args = parser.parse_args()
    if args.command == "seed":
        return seed(args)
    if args.command == "progress":
        return progress(args)

    code = Path(args.code).resolve()
    work = Path(tempfile.mkdtemp(prefix="settlebench-"))
    count_dir = work / "counts"
    count_dir.mkdir()
    run = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS", "Q_", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "project.settings", "AUCTION_SANDBOX": "1", "AUCTION_PAYMENT_GATEWAY": "sandbox",
        "Q_CLUSTER_NAME": f"settle-{run}", "Q_WORKERS": os.environ.get("Q_WORKERS", "2"), "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1", "AUCTION_VAR_DIR": str(work / "var"),
    })
    if args.db == "mysql":
        env["DATABASE_URL"] = f"mysql://root@127.0.0.1:3306/{args.mysql_database}"
        env["REDIS_URL"] = f"redis://127.0.0.1:{args.redis_port}/0"
        env["REDIS_CACHE_URL"] = f"redis://127.0.0.1:{args.redis_port}/1"
        if args.fresh:
            subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", f"DROP DATABASE IF EXISTS {args.mysql_database}; CREATE DATABASE {args.mysql_database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"], check=True)
    else:
        database = Path(tempfile.gettempdir()) / "auction-settlebench.sqlite3"
        env["DATABASE_URL"] = f"sqlite:///{database}"
        if args.fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
    python = str(code / ".venv" / "bin" / "python") if (code / ".venv").exists() else sys.executable
    if args.fresh:
        log("migrating")
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=code, env=env, check=True)
    # Leftovers of an earlier run (schedules, results, a broker's queue) stay out of this one.
    subprocess.run([python, "manage.py", "shell", "-c",
                    "from django_q.models import Schedule, Task, OrmQ; Schedule.objects.all().delete(); Task.objects.all().delete(); OrmQ.objects.all().delete()\n"
                    # An earlier run stopped at its timeout leaves work undone, which this run's
                    # sweep would take up beside its own: closed here, in the bench database only.
                    "from auction.models import Lot, Refund; Refund.objects.filter(status__in=('pending', 'processing')).update(status='succeeded')\n"
                    "Lot.objects.filter(status__in=('upcoming', 'preview', 'bidding')).update(status='unsold')"],
                   cwd=code, env=env, check=True)
    if args.db == "mysql":
        for number in ("0", "1"):  # the broker's and the cache's databases only: tests may use others
            subprocess.run(["redis-cli", "-p", str(args.redis_port), "-n", number, "flushdb"], check=True, capture_output=True)
        subprocess.run(["redis-cli", "-p", str(args.redis_port), "config", "resetstat"], check=True, capture_output=True)

    log(f"seeding {args.lots} lots, {args.lots * args.deposits_per_lot} deposits ({code.name}, {args.db})")
    seeded = subprocess.run([python, str(HERE / "settle.py"), "seed", "--lots", str(args.lots), "--deposits-per-lot", str(args.deposits_per_lot),
                             "--bids", str(args.bids), "--lead", str(args.lead)], cwd=code, env=env, check=True, capture_output=True, text=True)
    info = json.loads(seeded.stdout.strip().splitlines()[-1])
    ends_at = info["ends_at"]
    log(f"seeded in {info['seed_seconds']} s; the lots end in {ends_at - time.time():.1f} s")

    cluster_env = {**env, "SETTLE_COUNT_DIR": str(count_dir), "PYTHONPATH": f"{COUNT_DIR_HOOK}:{code}"}
    log_file = open(work / "runjobs.log", "w")
    cluster = subprocess.Popen([python, "manage.py", "runjobs"], cwd=code, env=cluster_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    watcher = subprocess.Popen([python, str(HERE / "settle.py"), "progress", "--special", str(info["special_id"])], cwd=code, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    expected = {"orders": args.lots, "refunds": args.lots * (args.deposits_per_lot - 1)}
    reached: dict[str, float] = {}
    last, samples = {}, []
    load_start = os.getloadavg()[0]
    ready_before_end = None
    while time.time() < ends_at and ready_before_end is None:
        # Up once a process of the cluster has spoken to the database.
        if any(count_dir.glob("*.json")):
            ready_before_end = round(ends_at - time.time(), 1)
        time.sleep(0.2)
    if ready_before_end is None:
        log("the cluster was not up by the end: raise --lead")
    try:
        while True:
            time.sleep(0.5)
            now = time.time()
            watcher.stdin.write("\n")
            watcher.stdin.flush()
            last = json.loads(watcher.stdout.readline())
            since = now - ends_at
            samples.append((round(since, 1), last))
            for key, value, target in (("orders", last["orders"], expected["orders"]), ("settled", last["settled"], args.lots),
                                       ("refunds_created", last["created"], expected["refunds"]),
                                       ("refunds_submitted", last["submitted"], expected["refunds"]),
                                       ("refunds_completed", last["completed"], expected["refunds"])):
                if key not in reached and value >= target:
                    reached[key] = round(since, 1)
                if key == "refunds_submitted" and value > 0 and "first_refund_submitted" not in reached:
                    reached["first_refund_submitted"] = round(since, 1)
            if "refunds_completed" in reached or since > args.timeout:
                break
            if cluster.poll() is not None:
                log("the cluster exited")
                break
        cpu = cluster_cpu_seconds(cluster.pid)
        enqueues = redis_enqueues(args.redis_port) if args.db == "mysql" else None
        watcher.stdin.write("final\n")
        watcher.stdin.flush()
        from_rows = json.loads(watcher.stdout.readline())
    finally:
        watcher.stdin.close()
        watcher.wait(timeout=10)
        stopped = time.monotonic()
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGTERM)
            try:
                cluster.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait()
        stop_seconds = round(time.monotonic() - stopped, 1)
        log_file.close()
    counts = {"domain": 0, "django_q": 0, "ormq_insert": 0}
    for path in count_dir.glob("*.json"):
        for key, value in json.loads(path.read_text()).items():
            counts[key] += value
    tasks = enqueues if enqueues is not None else counts["ormq_insert"]
    result = {
        "label": args.label or code.name, "db": args.db, "lots": args.lots, "deposits": args.lots * args.deposits_per_lot,
        "from_rows": from_rows, "reached": reached, "last": last, "timeout": args.timeout,
        "queries_domain_per_lot": round(counts["domain"] / args.lots, 1), "queries_q_per_lot": round(counts["django_q"] / args.lots, 1),
        "tasks": tasks, "tasks_per_lot": round(tasks / args.lots, 2) if tasks is not None else None,
        "cluster_cpu_s": round(cpu, 1), "cluster_up_s_before_end": ready_before_end, "sigterm_stop_s": stop_seconds, "load_1m": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))
    if "--keep" not in sys.argv:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
