#!/usr/bin/env python
"""Benchmark: concurrent bids on one hot lot, over HTTP, under gunicorn on MariaDB + Redis.

Not a test. See bench/README.md. In short, for each gunicorn setting
(--workers x --threads) it:

1. serves the app with deploy/gunicorn.conf.py behind nginx as in
   production (--front nginx: clients on 127.0.0.1:<free port>, gunicorn on a
   unix socket; --front none: gunicorn on 127.0.0.1:<free port>),
   DJANGO_DEBUG=0, against its own database (--db, dropped and recreated at
   the start) and Redis db --redis-db (flushed);
2. logs bidders in (sandbox), and for every level (--levels, default
   1,16,64 concurrent bidders) takes a fresh hot lot on which each bidder of
   that level pays a lot deposit (POST /deposits, then sandbox succeed);
3. drives bids with wrk (bench/bids.lua: one wrk thread = one connection =
   one bidder with its own token; it bids the next_min_bid read from the
   last answer, plus a random 0..--jitter steps), for --seconds;
4. checks in MariaDB that no accepted bid was lost: bid rows = 201s counted
   by the client = lot.bid_count; current_price = the highest bid; the
   leader is that bid's bidder; prices strictly rise in id order; nobody
   outbid themselves;
5. measures the same server on a trivial endpoint (GET
   /api/v1/specials?limit=1, 64 connections) as the ceiling, and (unless
   --no-bare) bench/bare_app.py, a bare Ninja endpoint doing one UPDATE,
   under the same gunicorn setting, as the reference.

Prints a table per setting and the best one; exits 1 if any database check
fails. Every process it starts is stopped before it exits.

    .venv/bin/python bench/bids.py --seconds 10
"""

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ modules, also when imported
from bid_database import mysql_connect, recreate_database  # noqa: E402
from bid_levels import BENCH, LevelResult, login_bidders, run_ceiling, run_level  # noqa: E402
from machine import CpuMeter, log, wait_quiet  # noqa: E402
from servers import DEFAULT_WORKER_CLASS, ROOT, VENV_BIN, Nginx, Profiler, Server, run_wrk  # noqa: E402

PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
FORBIDDEN_DBS = ("auction",)
TARGET_BIDS_PER_S = 1000
TARGET_P99_MS = 50



def app_env(args, tmp: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"mysql://root@{args.mysql_host}:{args.mysql_port}/{args.db}",
        REDIS_URL=f"redis://127.0.0.1:6379/{args.redis_db}",
        DJANGO_SETTINGS_MODULE="project.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-not-secret-" + "k" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="0",
        AUCTION_SANDBOX="1",
        AUCTION_THROTTLE_LOGIN_IP="100000/m",
        # A bidder here bids far faster than a person: counted (the cost is
        # measured), never refused.
        AUCTION_THROTTLE_BID="100000000/10s",
        AUCTION_VAR_DIR=str(tmp / "var"),
        CACHE_KEY_PREFIX="bench",
        Q_CLUSTER_NAME="bench",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(dict(kv.split("=", 1) for kv in args.env))
    return env


def prepare(args, env: dict, lots_needed: int) -> list[int]:
    import redis

    log(f"recreating database {args.db} and flushing redis db {args.redis_db}")
    recreate_database(args)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    log("migrating")
    r = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"migrate failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    r = subprocess.run(
        [PYTHON, str(BENCH / "seed.py"), "--lots", str(lots_needed), "--start-price", str(args.start_price),
         "--deposit", str(args.deposit), "--increment", str(args.increment)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if r.returncode:
        raise RuntimeError(f"seeding failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    seeded = json.loads(r.stdout.strip().splitlines()[-1])
    conn = mysql_connect(args, args.db)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE bench_counter (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB")
        cur.execute("INSERT INTO bench_counter VALUES (1, 0)")
    finally:
        conn.close()
    return seeded["lot_ids"]


def fmt_ms(v: float) -> str:
    return "-" if v != v else f"{v:.1f}"


def print_config(label: str, levels: list[LevelResult], ceiling: dict | None, bare: dict | None) -> None:
    print(f"\n== {label}")
    print(f"{'bidders':>8} {'conns':>5} {'accepted/s':>10} {'409/s':>8} {'req/s':>8} {'5xx':>5} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p99 201':>7} {'409 low/lead':>13} {'cpu gu/ng/db/wrk/other %':>25} {'boots':>5} {'loop ms':>7}  DB check")
    for r in levels:
        errs = sum(r.socket_errors.values())
        check = "OK" if r.db_ok else "FAIL: " + "; ".join(r.db_problems)
        extra = f" (+{errs} socket errors, {r.client_other} other 4xx)" if errs or r.client_other else ""
        cpu = f"{r.cpu['gunicorn']:.0f}/{r.cpu['nginx']:.0f}/{r.cpu['mariadb']:.0f}/{r.cpu['wrk']:.0f}/{CpuMeter.other(r.cpu):.0f}"
        print(f"{r.bidders:>8} {r.connections:>5} {r.accepted_per_s:>10.0f} {r.conflicts_per_s:>8.0f} {r.requests_per_s:>8.0f} "
              f"{r.server_5xx:>5} {fmt_ms(r.p50_ms):>7} {fmt_ms(r.p99_ms):>7} {fmt_ms(r.p99_ok_ms):>7} "
              f"{r.too_low:>6}/{r.leading:<6} {cpu:>25} {r.worker_boots:>5} {r.loop_ms:>7.0f}  {check}{extra}")
    for name, c in (("ceiling GET " + (ceiling or {}).get("path", ""), ceiling), ("bare Ninja UPDATE (bench/bare_app.py)", bare)):
        if c:
            cpu = c.get("cpu")
            cpu_s = (f", cpu gunicorn {cpu['gunicorn']:.0f}% nginx {cpu['nginx']:.0f}% mariadb {cpu['mariadb']:.0f}% wrk {cpu['wrk']:.0f}% "
                     f"other {CpuMeter.other(cpu):.0f}%") if cpu else ""
            print(f"{name}: {c['rps']:.0f} req/s ({c['ok']} ok, {c['c4xx']} 4xx, {c['c5xx']} 5xx), "
                  f"p50 {c['p50'] / 1000:.1f} ms, p99 {c['p99'] / 1000:.1f} ms at {args_global.ceiling_connections} connections{cpu_s}")


args_global = None


def main() -> int:
    global args_global
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="bidding time per level, and ceiling time")
    parser.add_argument("--levels", default="1,16,64", help="concurrent bidders per level")
    parser.add_argument("--workers", default="4", help="GUNICORN_WORKERS; a comma list sweeps")
    parser.add_argument("--threads", default="1", help="GUNICORN_THREADS; a comma list sweeps")
    parser.add_argument("--gunicorn-arg", action="append", default=[], help="extra gunicorn CLI flag (overrides the conf), e.g. --gunicorn-arg=--max-requests=0")
    parser.add_argument("--front", choices=("nginx", "none"), default="nginx",
                        help="nginx (default): clients talk to nginx, as in production (deploy/nginx.conf), which hands "
                             "each request to gunicorn over a unix socket; none: clients talk to gunicorn on TCP")
    parser.add_argument("--worker-class", default=DEFAULT_WORKER_CLASS, choices=("sync", "gthread"),
                        help="GUNICORN_WORKER_CLASS (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the app's environment")
    parser.add_argument("--db", default="auction_bench")
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--start-price", type=int, default=100_000, help="fen")
    parser.add_argument("--deposit", type=int, default=50_000, help="fen")
    parser.add_argument("--increment", type=int, default=1_000, help="the lot's fixed step, fen")
    parser.add_argument("--strategy", choices=("next", "clock"), default="next",
                        help="next: bid the last next_min_bid seen (+jitter), so most bids lose under contention; "
                        "clock: bid at least start + one step per --tick-us elapsed, so bids arrive rising and most are accepted")
    parser.add_argument("--jitter", type=int, default=None, help="add random 0..N steps (default 2 with next, 0 with clock)")
    parser.add_argument("--tick-us", type=int, default=10, help="clock strategy: microseconds per step")
    parser.add_argument("--rate", type=float, default=0,
                        help="offered bids/s per level, spread over its bidders (think time); 0: closed loop, "
                        "each bidder bids again as soon as it has its answer")
    parser.add_argument("--max-other-cpu", type=float, default=30.0,
                        help="before each setting, wait (up to --wait-quiet s) until other processes use less than this %% of one core")
    parser.add_argument("--wait-quiet", type=int, default=0, help="seconds to wait for a quiet box (0: only warn)")
    parser.add_argument("--grace", type=int, default=3, help="seconds wrk waits after the window for the last answers")
    parser.add_argument("--ceiling-path", default="/api/v1/specials?limit=1")
    parser.add_argument("--ceiling-connections", type=int, default=64)
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Ninja UPDATE reference")
    parser.add_argument("--no-solo-pair", dest="solo_pair", action="store_false",
                        help="at 1 bidder, really use one bidder (every bid after the first is already_leading)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--profile", metavar="DIR", help="py-spy every level and ceiling into DIR (collapsed stacks); "
                        "it takes CPU from the server, so numbers from a profiled run are lower")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--instrument", metavar="DIR", help="serve bench/instrumented_wsgi.py instead of project.wsgi: "
                        "per-request timers (token lookup, lock wait and hold, MariaDB, Redis, rendering) into DIR, summarized per level")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir with gunicorn logs")
    args = parser.parse_args()
    args_global = args
    profiler = Profiler(args.profile, args.profile_rate)
    if args.db in FORBIDDEN_DBS or args.db.startswith("test_auction") or not args.db.replace("_", "").isalnum():
        parser.error(f"refusing to use database {args.db!r}")
    if args.jitter is None:
        args.jitter = 2 if args.strategy == "next" else 0
    if args.front == "nginx" and not shutil.which("nginx"):
        parser.error("nginx is not installed (Debian: apt-get install nginx-light); or measure gunicorn alone with --front none")
    levels = [int(x) for x in args.levels.split(",")]
    configs = list(itertools.product([int(x) for x in args.workers.split(",")], [int(x) for x in args.threads.split(",")]))

    # SIGTERM/SIGHUP unwind through the finally blocks like Ctrl-C.
    def _stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)

    tmp = Path(tempfile.mkdtemp(prefix="auction-bench-"))
    env = app_env(args, tmp)
    lot_ids = prepare(args, env, lots_needed=len(configs) * len(levels))
    lots = iter(lot_ids)
    tokens: list[str] = []
    results = []
    failed = False
    completed = False
    try:
        for workers, threads in configs:
            label = (("nginx -> " if args.front == "nginx" else "")
                     + f"gunicorn {args.worker_class} workers={workers} threads={threads} {' '.join(args.gunicorn_arg)}".strip()
                     + f", strategy {args.strategy}, jitter {args.jitter}"
                     + (f", offered {args.rate:.0f} bids/s per level" if args.rate else ", closed loop"))
            wait_quiet(args)
            log(f"starting {label}")
            if args.instrument:
                instrument_dir = Path(args.instrument) / f"{workers}x{threads}"
                instrument_dir.mkdir(parents=True, exist_ok=True)
                server = Server(app="instrumented_wsgi:application", env={**env, "BENCH_INSTRUMENT_DIR": str(instrument_dir)},
                                workers=workers, threads=threads, log_path=tmp / f"gunicorn-{workers}x{threads}.log",
                                extra=args.gunicorn_arg, pythonpath=str(BENCH),
                                front=Nginx(tmp, f"{workers}x{threads}") if args.front == "nginx" else None,
                                worker_class=args.worker_class)
            else:
                server = Server(app="project.wsgi", env=env, workers=workers, threads=threads,
                                log_path=tmp / f"gunicorn-{workers}x{threads}.log", extra=args.gunicorn_arg,
                                front=Nginx(tmp, f"{workers}x{threads}") if args.front == "nginx" else None,
                                worker_class=args.worker_class)
            level_results: list[LevelResult] = []
            ceiling = bare = None
            try:
                server.start(args.ceiling_path)
                meter = CpuMeter(server.proc.pid, server.front.proc.pid if server.front else None)
                if not tokens:
                    tokens = login_bidders(server.base, max(max(levels), 2))
                    log(f"logged in {len(tokens)} bidders")
                # Warm every worker and thread (URLconf, DB connections) before measuring. A gthread
                # worker accepts as many kept-alive connections as it can, so a keep-alive warm-up can
                # miss a worker entirely: first new connection per request (spreads the accepts).
                run_wrk(["wrk", "-t2", f"-c{max(16, workers * threads * 2)}", "-d2s", "-H", "Connection: close",
                         server.base + args.ceiling_path], tmp / "warm.out", timeout=40)
                run_wrk(["wrk", "-t2", f"-c{max(64, workers * threads * 2)}", "-d1s", server.base + args.ceiling_path],
                        tmp / "warm.out", timeout=40)
                for bidders in levels:
                    lot_id = next(lots)
                    if args.wait_quiet:
                        wait_quiet(args)
                    log(f"{bidders} bidder(s) on lot {lot_id} for {args.seconds}s")
                    conn = mysql_connect(args, args.db)
                    t_level = time.time()
                    try:
                        result = run_level(args, server, meter, conn, tmp, tokens, bidders, lot_id, profiler=profiler)
                    finally:
                        conn.close()
                    failed |= not result.db_ok
                    result.t_span = (t_level, time.time())
                    level_results.append(result)
                log(f"ceiling: GET {args.ceiling_path}")
                ceiling = run_ceiling(args, server.base, args.ceiling_path, tmp, f"ceiling-{workers}x{threads}", meter=meter,
                                      profile_pid=server.proc.pid, profiler=profiler)
            finally:
                server.stop()
            if not args.no_bare:
                log("reference: bare Ninja UPDATE")
                bare_server = Server(app="bare_app:application", env=env, workers=workers, threads=threads,
                                     log_path=tmp / f"bare-{workers}x{threads}.log", extra=args.gunicorn_arg, pythonpath=str(BENCH),
                                     front=Nginx(tmp, f"bare-{workers}x{threads}") if args.front == "nginx" else None,
                                     worker_class=args.worker_class)
                try:
                    bare_server.start("/bump")
                    run_ceiling(args, bare_server.base, "/bump", tmp, "bare-warm", method="POST", seconds=2)
                    bare = run_ceiling(args, bare_server.base, "/bump", tmp, f"bare-{workers}x{threads}", method="POST",
                                       meter=CpuMeter(bare_server.proc.pid, bare_server.front.proc.pid if bare_server.front else None),
                                       profile_pid=bare_server.proc.pid, profiler=profiler)
                finally:
                    bare_server.stop()
            results.append({"workers": workers, "threads": threads, "label": label, "levels": level_results, "ceiling": ceiling, "bare": bare})
            print_config(label, level_results, ceiling, bare)
            if args.instrument:
                import instrument_summary

                records = instrument_summary.load(str(instrument_dir))
                for r in level_results:
                    since, until = r.t_span
                    print(f"\n-- server-side timers, {r.bidders} bidder(s), lot {r.lot_id} (bench/instrumented_wsgi.py)")
                    print(instrument_summary.summarize([x for x in records if f"/lots/{r.lot_id}/bids" in x["path"]
                                                        and since <= x["t"] <= until], prefix="   "))
            sys.stdout.flush()
        completed = True
    finally:
        if args.keep_logs or failed or not completed:
            log(f"logs kept in {tmp}")
        else:
            for path in sorted(tmp.rglob("*"), reverse=True):
                path.unlink() if path.is_file() or path.is_symlink() else path.rmdir()
            tmp.rmdir()

    top = max(levels)
    scored = [(next((r for r in res["levels"] if r.bidders == top), None), res) for res in results]
    scored = [(r, res) for r, res in scored if r is not None]
    if scored:
        best_r, best = max(scored, key=lambda pair: (pair[0].db_ok and pair[0].server_5xx == 0, pair[0].accepted_per_s))
        print(f"\nbest at {top} bidders: workers={best['workers']} threads={best['threads']}: "
              f"{best_r.accepted_per_s:.0f} accepted bids/s, p99 {fmt_ms(best_r.p99_ms)} ms, {best_r.server_5xx} 5xx")
        verdict = (best_r.accepted_per_s >= TARGET_BIDS_PER_S and best_r.p99_ms < TARGET_P99_MS and best_r.server_5xx == 0)
        print(f"target (>= {TARGET_BIDS_PER_S} accepted/s at 64 bidders, p99 < {TARGET_P99_MS} ms, 0 5xx): {'MET' if verdict else 'NOT MET'}")
        if best["ceiling"]:
            print(f"ceiling on the same server: {best['ceiling']['rps']:.0f} req/s")
        if best["bare"]:
            bare = best["bare"]
            print(f"bare Ninja UPDATE, same gunicorn setting: {bare['rps']:.0f} req/s, p99 {bare['p99'] / 1000:.1f} ms "
                  f"at {args_global.ceiling_connections} connections")
        if not args.rate:
            # Little's law: in a closed loop the mean latency is bidders / answers per second.
            floor = top * 1000 / TARGET_P99_MS
            print(f"closed loop at {top} bidders: a mean under {TARGET_P99_MS} ms (let alone a p99) needs over "
                  f"{floor:.0f} answers/s (Little's law); this run answered {best_r.requests_per_s:.0f}/s")
    if args.json:
        def encode(o):
            return o.__dict__ | {"accepted_per_s": o.accepted_per_s, "conflicts_per_s": o.conflicts_per_s} if isinstance(o, LevelResult) else str(o)

        Path(args.json).write_text(json.dumps(results, default=encode, indent=2))
    print("\nDB check: " + ("FAIL" if failed else "OK"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
