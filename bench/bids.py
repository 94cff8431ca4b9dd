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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ modules, also when imported
from machine import CpuMeter, calibrate, log, wait_quiet  # noqa: E402
from servers import DEFAULT_WORKER_CLASS, ROOT, VENV_BIN, Nginx, Profiler, Server, run_wrk  # noqa: E402

BENCH = ROOT / "bench"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
FORBIDDEN_DBS = ("auction",)
TARGET_BIDS_PER_S = 1000
TARGET_P99_MS = 50


# --- the database ----------------------------------------------------------------


def mysql_connect(args, db: str | None = None):
    import MySQLdb

    kwargs = {"host": args.mysql_host, "port": args.mysql_port, "user": "root", "charset": "utf8mb4", "autocommit": True}
    if db:
        kwargs["database"] = db
    return MySQLdb.connect(**kwargs)


def recreate_database(args) -> None:
    conn = mysql_connect(args)
    try:
        cur = conn.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS `{args.db}`")
        cur.execute(f"CREATE DATABASE `{args.db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def scalar(cur, sql: str, params=()):
    cur.execute(sql, params)
    row = cur.fetchone()
    return row[0] if row else None


def db_check(conn, lot_id: int, accepted: int) -> tuple[bool, list[str], dict]:
    """No accepted bid lost, none invented, one leader: the highest bidder."""
    cur = conn.cursor()
    rows, max_price, autos = (0, 0, 0)
    cur.execute("SELECT COUNT(*), COALESCE(MAX(price), 0), COALESCE(SUM(is_auto), 0) FROM auction_bid WHERE lot_id = %s", (lot_id,))
    rows, max_price, autos = (int(v) for v in cur.fetchone())
    cur.execute("SELECT bid_count, current_price, leader_id FROM auction_lot WHERE id = %s", (lot_id,))
    bid_count, current_price, leader_id = cur.fetchone()
    cur.execute("SELECT user_id FROM auction_bid WHERE lot_id = %s ORDER BY price DESC, id DESC LIMIT 2", (lot_id,))
    top = [r[0] for r in cur.fetchall()]
    at_max = scalar(cur, "SELECT COUNT(*) FROM auction_bid WHERE lot_id = %s AND price = %s", (lot_id, max_price))
    cur.execute(
        "SELECT COALESCE(SUM(prev_price >= price), 0), COALESCE(SUM(prev_user = user_id), 0) FROM ("
        " SELECT price, user_id, LAG(price) OVER (ORDER BY id) AS prev_price, LAG(user_id) OVER (ORDER BY id) AS prev_user"
        " FROM auction_bid WHERE lot_id = %s) AS t",
        (lot_id,),
    )
    not_rising, self_outbid = (int(v) for v in cur.fetchone())
    problems = []
    if rows != accepted:
        problems.append(f"bid rows {rows} != accepted 201s {accepted}")
    if bid_count != rows:
        problems.append(f"lot.bid_count {bid_count} != bid rows {rows}")
    if rows:
        if current_price != max_price:
            problems.append(f"current_price {current_price} != max bid {max_price}")
        if at_max != 1:
            problems.append(f"{at_max} bids at the top price")
        if leader_id is None or leader_id != top[0]:
            problems.append(f"leader {leader_id} != top bidder {top[0]}")
    elif leader_id is not None or current_price:
        problems.append("no bids but a leader or a price")
    if not_rising:
        problems.append(f"{not_rising} bids not above the one before")
    if self_outbid:
        problems.append(f"{self_outbid} bids outbidding the bidder's own lead")
    if autos:
        problems.append(f"{autos} proxy bids (none expected)")
    facts = {"rows": rows, "bid_count": int(bid_count), "current_price": int(current_price), "max_price": max_price, "leader_id": leader_id}
    return not problems, problems, facts


# --- setup over HTTP -------------------------------------------------------------


def login_bidders(base: str, count: int) -> list[str]:
    import httpx

    tokens = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(count):
            r = client.post("/api/v1/auth/sandbox", json={"openid": f"bench-{i:03d}", "nickname": f"bidder{i:03d}"})
            if r.status_code != 200:
                raise RuntimeError(f"sandbox login failed: {r.status_code} {r.text[:300]}")
            tokens.append(r.json()["token"])
    return tokens


def pay_deposits(base: str, tokens: list[str], lot_id: int) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=30) as client:
        for token in tokens:
            auth = {"Authorization": f"Bearer {token}"}
            r = client.post("/api/v1/deposits", json={"lot_id": lot_id}, headers=auth)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"deposit failed: {r.status_code} {r.text[:300]}")
            out_trade_no = r.json()["payment"]["out_trade_no"]
            r = client.post(f"/api/v1/payments/sandbox/{out_trade_no}/succeed", headers=auth)
            if r.status_code != 200:
                raise RuntimeError(f"sandbox payment failed: {r.status_code} {r.text[:300]}")


# --- one level ---------------------------------------------------------------------


def percentile(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-p * len(sorted_values) // 100)))  # nearest rank
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LevelResult:
    bidders: int
    connections: int
    lot_id: int
    window_s: float
    sent: int
    received: int
    accepted: int
    too_low: int
    leading: int
    conflict_other: int
    client_other: int
    server_5xx: int
    socket_errors: dict
    statuses: dict
    p50_ms: float
    p99_ms: float
    p99_ok_ms: float
    db_ok: bool
    db_problems: list[str]
    db_facts: dict
    cpu: dict = field(default_factory=dict)
    worker_boots: int = 0
    t_span: tuple = (0.0, 0.0)
    loop_ms: float = 0.0

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.window_s if self.window_s else 0.0

    @property
    def conflicts_per_s(self) -> float:
        return (self.too_low + self.leading + self.conflict_other) / self.window_s if self.window_s else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.received / self.window_s if self.window_s else 0.0


def parse_bids_out(text: str) -> dict:
    out = {"threads": [], "statuses": {}, "lat": [], "lat_ok": [], "summary": None}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "summary":
            v = [int(x) for x in rest.split()]
            out["summary"] = dict(zip(("duration", "requests", "connect", "read", "write", "status", "timeout"), v, strict=False))
        elif kind == "thread":
            out["threads"].append({k: int(v) for k, v in (part.split("=") for part in rest.split())})
        elif kind == "statuses":
            for part in rest.split():
                code, count = part.split(":")
                out["statuses"][int(code)] = out["statuses"].get(int(code), 0) + int(count)
        elif kind == "lat":
            out["lat"].extend(int(x) for x in rest.split())
        elif kind == "lat_ok":
            out["lat_ok"].extend(int(x) for x in rest.split())
    return out


def run_level(args, server: Server, meter: CpuMeter, conn, tmp: Path, tokens: list[str], bidders: int, lot_id: int) -> LevelResult:
    used = tokens[: max(bidders, 2 if bidders == 1 and args.solo_pair else bidders)]
    pay_deposits(server.base, used, lot_id)
    held = scalar(conn.cursor(), "SELECT COUNT(*) FROM auction_deposit WHERE lot_id = %s AND status = 'held'", (lot_id,))
    if held != len(used):
        raise RuntimeError(f"lot {lot_id}: {held} held deposits, expected {len(used)}")
    if bidders == 1 and args.solo_pair:
        lines = [" ".join(used[:2])]  # one connection taking turns between two bidders
    else:
        lines = used[:bidders]
    tokens_file = tmp / f"tokens-{lot_id}.txt"
    tokens_file.write_text("\n".join(lines) + "\n")
    out_path = tmp / f"bids-{lot_id}.out"
    connections = len(lines)
    url = f"{server.base}/api/v1/lots/{lot_id}/bids"
    cmd = [
        "wrk", f"-t{connections}", f"-c{connections}", f"-d{args.seconds + args.grace}s", "--timeout", "10s",
        "-s", str(BENCH / "bids.lua"), url, "--",
        str(tokens_file), str(args.seconds), str(args.increment), str(args.jitter), str(args.start_price),
        args.strategy, str(int(time.monotonic() * 1e6)), str(args.tick_us),
        str(int(connections * 1e6 / args.rate) if args.rate else 0),
    ]
    loop_ms = calibrate()
    boots0 = server.boots()
    PROFILER.start(server.proc.pid, f"bids-{server.env['GUNICORN_WORKERS']}x{server.env['GUNICORN_THREADS']}-{bidders}", args.seconds)
    before = meter.sample()
    try:
        run_wrk(cmd, out_path, timeout=args.seconds + args.grace + 30)
    finally:
        after = meter.sample()
        PROFILER.stop()
    data = parse_bids_out(out_path.read_text())
    threads = data["threads"]
    t_first = min(t["t_first"] for t in threads if t["t_first"])
    t_last = max(t["t_last"] for t in threads)
    total = lambda key: sum(t[key] for t in threads)  # noqa: E731
    lat = sorted(data["lat"])
    lat_ok = sorted(data["lat_ok"])
    accepted = total("accepted")
    ok, problems, facts = db_check(conn, lot_id, accepted)
    if total("sent") != total("received"):
        problems = [*problems, f"{total('sent') - total('received')} requests without an answer"]
    summary = data["summary"] or {}
    return LevelResult(
        bidders=bidders,
        connections=connections,
        lot_id=lot_id,
        window_s=(t_last - t_first) / 1e6,
        sent=total("sent"),
        received=total("received"),
        accepted=accepted,
        too_low=total("too_low"),
        leading=total("leading"),
        conflict_other=total("conflict_other"),
        client_other=total("client_other"),
        server_5xx=total("server_5xx"),
        socket_errors={k: summary.get(k, 0) for k in ("connect", "read", "write", "timeout")},
        statuses=data["statuses"],
        p50_ms=percentile(lat, 50) / 1000,
        p99_ms=percentile(lat, 99) / 1000,
        p99_ok_ms=percentile(lat_ok, 99) / 1000,
        db_ok=ok,
        db_problems=problems,
        db_facts=facts,
        cpu=CpuMeter.shares(before, after, loaded_s=(t_last - t_first) / 1e6),
        worker_boots=server.boots() - boots0,
        loop_ms=loop_ms,
    )


def run_ceiling(args, base: str, path: str, tmp: Path, name: str, *, method: str = "GET", meter: CpuMeter | None = None,
                seconds: int | None = None, profile_pid: int | None = None) -> dict:
    seconds = seconds or args.seconds
    out_path = tmp / f"{name}.out"
    script = BENCH / "ceiling.lua"
    cmd = ["wrk", "-t2", f"-c{args.ceiling_connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script)]
    if method != "GET":
        # wrk -s takes one script; the method comes from a tiny wrapper.
        wrapper = tmp / f"{name}.lua"
        wrapper.write_text(f'wrk.method = "{method}"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = "{{}}"\ndofile("{script}")\n')
        cmd[-1] = str(wrapper)
    cmd.append(base + path)
    if profile_pid:
        PROFILER.start(profile_pid, name, seconds)
    before = meter.sample() if meter else None
    try:
        run_wrk(cmd, out_path, timeout=seconds + 30)
    finally:
        after = meter.sample() if meter else None
        if profile_pid:
            PROFILER.stop()
    fields = out_path.read_text().split()
    names = ("duration", "requests", "ok", "c4xx", "c5xx", "p50", "p99", "connect", "read", "write", "timeout")
    values = dict(zip(names, (int(x) for x in fields[1:]), strict=False))
    values["rps"] = values["requests"] / (values["duration"] / 1e6)
    values["ok_rps"] = values["ok"] / (values["duration"] / 1e6)
    values["path"] = path
    if meter:
        values["cpu"] = CpuMeter.shares(before, after)
    return values


# --- the run -----------------------------------------------------------------------


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
PROFILER: Profiler | None = None


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
    global PROFILER
    PROFILER = Profiler(args.profile, args.profile_rate)
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
                        result = run_level(args, server, meter, conn, tmp, tokens, bidders, lot_id)
                    finally:
                        conn.close()
                    failed |= not result.db_ok
                    result.t_span = (t_level, time.time())
                    level_results.append(result)
                log(f"ceiling: GET {args.ceiling_path}")
                ceiling = run_ceiling(args, server.base, args.ceiling_path, tmp, f"ceiling-{workers}x{threads}", meter=meter,
                                      profile_pid=server.proc.pid)
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
                                       profile_pid=bare_server.proc.pid)
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
