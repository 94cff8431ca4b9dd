#!/usr/bin/env python
"""Benchmark: a rush of claims on one hot coupon, over HTTP, under gunicorn on MariaDB + Redis.

Not a test. The approach of bench/bids.py (see bench/README.md): its own
database, the production gunicorn config, wrk with one thread per connection,
latency measured in the Lua script, an exact check in MariaDB afterwards.

1. Drops and recreates its own database (--db, default auction_bench_coupons;
   it refuses ``auction`` and ``test_*``), flushes Redis db --redis-db,
   migrates, and seeds (``bench/coupons.py seed``, models only) --connections
   x --users-per-connection users with API tokens and one coupon per
   scenario, claimable now, one per user:
   - ``hot``: a total far above what the run can claim, so every claim from
     a new user succeeds: the claim path's throughput on one hot row;
   - ``rush``: --rush-total coupons for many more claimants: the first ones
     succeed, then the rest are ``coupon_sold_out``.
2. Serves ``project.wsgi`` with ``gunicorn -c deploy/gunicorn.conf.py`` behind
   nginx as in production (bench/bids.py's front; --front none: gunicorn alone
   on a free port of 127.0.0.1), DJANGO_DEBUG=0, --workers (--threads with
   --worker-class gthread).
3. Per scenario drives ``POST /api/v1/coupons/{id}/claim`` with wrk and
   bench/coupons.lua for --seconds: --connections connections, each claiming
   as the next of its own users as soon as the last answer is in.
4. Checks in MariaDB: issued = user coupon rows = the 201s the client
   counted, issued <= total, nobody holds two, claim numbers unique.
5. Measures the same server on a trivial read (GET /coupons?limit=1) as the
   ceiling: on a small box the claim rate is bounded by CPU long before the
   coupon's row lock.

    .venv/bin/python bench/coupons.py                 # 64 connections, 10 s per scenario
    .venv/bin/python bench/coupons.py --workers 4 --threads 4 --seconds 20

Every process it starts runs in its own session and is stopped in a
``finally``. Traffic goes to 127.0.0.1 only. Exit status 1: a check failed.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bid_database import mysql_connect as mysql  # noqa: E402  (the bid benchmark's own)
from bid_database import recreate_database  # noqa: E402
from machine import HOST, free_port  # noqa: E402
from servers import DEFAULT_WORKER_CLASS, ROOT, VENV_BIN, Nginx  # noqa: E402  (the same front as the bid benchmark)

PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable


def log(message: str) -> None:
    print(f"[coupons {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- seeding (runs inside Django: `bench/coupons.py seed ...`) ---------------------------


def seed_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="coupons.py seed")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--rush-total", type=int, required=True)
    parser.add_argument("--tokens-file", required=True)
    parser.add_argument("--per-line", type=int, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import secrets
    from datetime import timedelta

    import django

    django.setup()
    from django.utils import timezone

    from auction.models import AuthToken, Coupon, User
    from auction.services.coupons import coupon_save
    from auction.services.tokens import _hash  # the stored form of a token, as token_issue writes it

    now = timezone.now()
    users = User.objects.bulk_create(
        [User(username=f"bench-coupon-{i}", openid=f"bench-coupon-{i}", nickname=f"claimant{i}", password="!") for i in range(args.users)],
        batch_size=2000,
    )
    raw = [secrets.token_urlsafe(32) for _ in users]
    AuthToken.objects.bulk_create(
        [AuthToken(user=user, key_hash=_hash(token), expires_at=now + timedelta(days=1)) for user, token in zip(users, raw, strict=True)],
        batch_size=2000,
    )
    with open(args.tokens_file, "w") as out:
        for start in range(0, len(raw), args.per_line):
            out.write(" ".join(raw[start : start + args.per_line]) + "\n")
    coupons = {}
    for name, total in (("hot", 10_000_000), ("rush", args.rush_total)):
        coupons[name] = coupon_save(
            coupon=Coupon(
                title=f"bench {name}", amount=1_000, total=total, per_user_limit=1, claim_starts_at=now - timedelta(hours=1),
                claim_ends_at=now + timedelta(hours=6), valid_days=7,
            ),
            staff="bench",
        ).pk
    print(json.dumps(coupons))


# --- processes -------------------------------------------------------------------------


def stop_session(proc: subprocess.Popen | None, timeout: float = 40) -> None:
    """SIGTERM the process we started, then SIGKILL whatever is left of its session."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def start_gunicorn(args, env: dict, log_path: Path, front: "Nginx | None") -> tuple[subprocess.Popen, str]:
    """gunicorn with the production config, behind ``front`` (nginx, started here) when given."""
    import httpx

    port = free_port()
    env = {**env, "GUNICORN_BIND": f"unix:{front.upstream}" if front else f"{HOST}:{port}",
           "GUNICORN_WORKERS": str(args.workers), "GUNICORN_THREADS": str(args.threads), "GUNICORN_WORKER_CLASS": args.worker_class}
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--no-control-socket", "project.wsgi"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    if front:
        front.start()
    base = front.base if front else f"http://{HOST}:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(base + "/api/v1/coupons?limit=1", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_session(proc)
    raise RuntimeError(f"gunicorn did not answer within 90 s; see {log_path}")


# --- database ----------------------------------------------------------------------------


def db_check(args, coupon_id: int, claimed: int) -> list[str]:
    conn = mysql(args, args.db)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT issued, total FROM auction_coupon WHERE id = %s", (coupon_id,))
        issued, total = cursor.fetchone()
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT user_id), COALESCE(MAX(claim_number), 0) FROM auction_usercoupon WHERE coupon_id = %s",
            (coupon_id,),
        )
        rows, holders, top_number = cursor.fetchone()
    finally:
        conn.close()
    problems = []
    if not (issued == rows == claimed):
        problems.append(f"issued {issued}, rows {rows}, 201s {claimed} differ")
    if issued > total:
        problems.append(f"oversold: issued {issued} > total {total}")
    if holders != rows or top_number > 1:
        problems.append(f"{rows - holders} users hold more than their limit of 1")
    return problems


# --- one scenario ----------------------------------------------------------------------


def percentile(values: list[int], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, -(-len(ordered) * p // 100))) - 1]


def run_scenario(args, base: str, name: str, coupon_id: int, tokens_file: Path, tmp: Path) -> dict:
    out_path = tmp / f"wrk-{name}.txt"
    cmd = [
        "wrk", f"-t{args.connections}", f"-c{args.connections}", f"-d{args.seconds + args.grace}s", "--timeout", "10s",
        "-s", str(ROOT / "bench" / "coupons.lua"), f"{base}/api/v1/coupons/{coupon_id}/claim", "--", str(tokens_file), str(args.seconds),
    ]
    log(f"{name}: {args.connections} connections for {args.seconds} s on coupon {coupon_id}")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "BENCH_OUT": str(out_path)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=args.seconds + args.grace + 60)
    finally:
        stop_session(proc, timeout=5)
    if proc.returncode:
        raise RuntimeError(f"wrk failed: {output.decode(errors='replace')}")
    totals: dict[str, int] = {}
    latencies: list[int] = []
    latencies_ok: list[int] = []
    starts, ends = [], []
    socket_errors = 0
    for line in out_path.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "errors":
            socket_errors = sum(int(value) for value in rest.split())
        elif kind == "thread":
            fields = dict(part.split("=") for part in rest.split())
            starts.append(int(fields.pop("t_first")))
            ends.append(int(fields.pop("t_last")))
            for key, value in fields.items():
                totals[key] = totals.get(key, 0) + int(value)
        elif kind == "lat":
            latencies.extend(int(value) for value in rest.split())
        elif kind == "lat_ok":
            latencies_ok.extend(int(value) for value in rest.split())
    window = (max(ends) - min(starts)) / 1e6 if starts else float("nan")
    # Exact: every claim the server committed is a 201 the client counted. (A
    # request wrk built as its thread stopped was never sent: the exact count
    # shows it never reached the server.)
    problems = db_check(args, coupon_id, totals.get("claimed", 0))
    return {
        "scenario": name, "connections": args.connections, "window_s": round(window, 2), **totals, "socket_errors": socket_errors,
        "claims_per_s": round(totals.get("claimed", 0) / window, 1), "answers_per_s": round(totals.get("received", 0) / window, 1),
        "p50_ms": round(percentile(latencies, 50) / 1000, 1), "p99_ms": round(percentile(latencies, 99) / 1000, 1),
        "p99_201_ms": round(percentile(latencies_ok, 99) / 1000, 1), "db_check": "OK" if not problems else "FAIL: " + "; ".join(problems),
    }


def ceiling(args, base: str, tmp: Path) -> float:
    """The same server on a trivial read (GET /coupons?limit=1): what this box serves at all."""
    proc = subprocess.Popen(
        ["wrk", "-t2", f"-c{args.connections}", "-d5s", f"{base}/api/v1/coupons?limit=1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        stop_session(proc, timeout=5)
    for line in output.decode(errors="replace").splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return float("nan")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "seed":
        seed_main(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="auction_bench_coupons")
    parser.add_argument("--mysql-host", default=HOST)
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--redis-db", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="gthread only")
    parser.add_argument("--worker-class", default=DEFAULT_WORKER_CLASS, choices=("sync", "gthread"))
    parser.add_argument("--front", choices=("nginx", "none"), default="nginx",
                        help="nginx (default) in front, as in production (see bench/bids.py); none: gunicorn alone")
    parser.add_argument("--connections", type=int, default=64, help="concurrent users claiming")
    # gunicorn serves its connections unevenly (a worker with fewer of them
    # answers each more often), so the fastest connections need many users.
    parser.add_argument("--users-per-connection", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--grace", type=int, default=3)
    parser.add_argument("--rush-total", type=int, default=2_000)
    parser.add_argument("--scenarios", default="hot,rush")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()
    if args.db == "auction" or args.db.startswith("test_"):
        parser.error(f"refusing to drop {args.db}: give the benchmark its own database")
    tmp = Path(tempfile.mkdtemp(prefix="bench-coupons-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://root@{args.mysql_host}:{args.mysql_port}/{args.db}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-not-secret-" + "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "AUCTION_SANDBOX": "1",
        "AUCTION_VAR_DIR": str(tmp / "var"),
        "CACHE_KEY_PREFIX": "bench-coupons",
        "Q_CLUSTER_NAME": "bench-coupons",
    }
    import redis

    log(f"recreating database {args.db}, flushing redis db {args.redis_db}, migrating")
    recreate_database(args)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    migrate = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True)
    if migrate.returncode:
        raise RuntimeError(f"migrate failed:\n{migrate.stderr[-3000:]}")
    tokens_file = tmp / "tokens.txt"
    users = args.connections * args.users_per_connection
    log(f"seeding {users} users with tokens and the coupons")
    seeded = subprocess.run(
        [PYTHON, __file__, "seed", "--users", str(users), "--rush-total", str(args.rush_total), "--tokens-file", str(tokens_file),
         "--per-line", str(args.users_per_connection)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if seeded.returncode:
        raise RuntimeError(f"seed failed:\n{seeded.stderr[-3000:]}")
    coupons = json.loads(seeded.stdout.strip().splitlines()[-1])
    server = None
    front = Nginx(tmp, "coupons") if args.front == "nginx" else None
    results = []
    read_ceiling = float("nan")
    try:
        server, base = start_gunicorn(args, env, tmp / "gunicorn.log", front)
        for name in args.scenarios.split(","):
            results.append(run_scenario(args, base, name, coupons[name], tokens_file, tmp))
            time.sleep(1)
        read_ceiling = ceiling(args, base, tmp)
    finally:
        stop_session(server)
        if front:
            front.stop()
    shape = f"{args.workers} {args.worker_class} workers" + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
    print(f"{'nginx -> ' if front else ''}gunicorn {shape}, {args.connections} concurrent users, MariaDB + Redis on 127.0.0.1")
    print(f"{'scenario':<9}{'claims/s':>9}{'answers/s':>10}{'201':>7}{'sold out':>9}{'limit':>7}{'5xx':>5}{'p50 ms':>8}{'p99 ms':>8}{'p99 201':>8}  DB check")
    for row in results:
        print(
            f"{row['scenario']:<9}{row['claims_per_s']:>9}{row['answers_per_s']:>10}{row.get('claimed', 0):>7}{row.get('sold_out', 0):>9}"
            f"{row.get('limit', 0):>7}{row.get('server_5xx', 0):>5}{row['p50_ms']:>8}{row['p99_ms']:>8}{row['p99_201_ms']:>8}  {row['db_check']}"
        )
    print(f"ceiling: GET /api/v1/coupons?limit=1 on the same server, {args.connections} connections: {read_ceiling:.0f} req/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "read_ceiling_per_s": read_ceiling}, indent=2))
    failed = any(row["db_check"] != "OK" or row.get("server_5xx") for row in results)
    if failed:
        log(f"a check failed; gunicorn's log is in {tmp}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
