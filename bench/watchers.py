"""W live watchers across L lots while bidders bid over HTTP (issue 14's benchmark).

    .venv/bin/python bench/watchers.py --watchers 1000 --lots 50 --rate 100 --seconds 20

It raises its own open-files limit (RLIMIT_NOFILE) to the hard limit, which
the ASGI processes it starts inherit, and stops at once when that is too low
for W (here the hard limit is 20,000: W = 10,000 fits; more needs root's
``ulimit -Hn``). The ASGI processes' per-IP socket cap is lifted through the
environment (every watcher comes from 127.0.0.1).

MariaDB + Redis (``auction_live_bench``, Redis dbs 13/12 unless DATABASE_URL /
REDIS_URL / REDIS_CACHE_URL say otherwise). Starts gunicorn behind nginx for the
bids (deploy/gunicorn.conf.py, production's worker count unless --web-workers)
and uvicorn with ``--workers`` (deploy/auction-live@.service's shape) for the
sockets, on a TCP port (nginx in front of the sockets is not in this version).
All watchers are one asyncio process of ``websockets`` clients, this one.

Phases: bids alone (accepted bids/s without watchers); W watchers connect
(time for all, RSS of the ASGI processes per socket once idle); bids again with
the watchers (accepted bids/s, messages/s delivered, commit -> receive latency
from each message's ``committed_at``); then every watcher's last state is
checked against the database (stale: must be 0); then a reconnect storm (all
drop, all reconnect within the window, all must get snapshots).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
for key, value in {
    "DATABASE_URL": "mysql://root@127.0.0.1:3306/auction_live_bench",
    "REDIS_URL": "redis://127.0.0.1:6379/13",
    "REDIS_CACHE_URL": "redis://127.0.0.1:6379/12",
    "DJANGO_SETTINGS_MODULE": "project.settings",
    # Production's settings, as bench/bids.py runs them: DEBUG would keep every query in memory.
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-not-secret-" + "k" * 50,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "AUCTION_SANDBOX": "1",
    # A bench bidder bids far faster than a person: never refused.
    "AUCTION_THROTTLE_BID": "100000000/10s",
    "LOG_LEVEL": "WARNING",
}.items():
    os.environ.setdefault(key, value)

from machine import CLK_TCK, HOST, free_port, log, pids_by_comm, proc_cpu_ticks, proc_stat  # noqa: E402
from servers import Nginx, Server  # noqa: E402
from watcher_bids import bids_elsewhere, final_states  # noqa: E402
from watcher_crowd import Crowd  # noqa: E402


def raise_open_files(watchers: int) -> int:
    """Soft limit up to the hard one (children inherit it); the limit, or exit when W cannot fit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    # This process holds one descriptor per watcher, each ASGI worker its share, plus files and the bidders.
    if wanted < watchers + 1024:
        sys.exit(f"open files: the hard limit is {wanted}, {watchers} watchers need {watchers + 1024}; raise ulimit -Hn")
    return wanted


def prepare_database(fresh: bool) -> None:
    """MariaDB: the database is made when missing (dropped first with --fresh) and migrated."""
    from urllib.parse import urlparse

    url = urlparse(os.environ["DATABASE_URL"])
    if url.scheme.startswith("mysql"):
        name = url.path.lstrip("/")
        mysql = ["mysql", f"-u{url.username or 'root'}", f"-h{url.hostname or '127.0.0.1'}", f"-P{url.port or 3306}"]
        drop = f"DROP DATABASE IF EXISTS `{name}`; " if fresh else ""
        subprocess.run([*mysql, "-e", f"{drop}CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"],
                       check=True)
    log("migrating")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True)


def seed(lots: int, bidders: int) -> tuple[list[int], list[str]]:
    out = subprocess.run(
        [sys.executable, str(HERE / "seed.py"), "--lots", str(lots), "--deposit", "0", "--increment", "1000"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    lot_ids = json.loads(out.stdout.strip().splitlines()[-1])["lot_ids"]
    import django

    django.setup()
    from auction.models import User
    from auction.services.tokens import token_issue

    stamp = int(time.time() * 1000)
    tokens = []
    for index in range(bidders):
        user = User.objects.create(username=f"wx:watchbench-{stamp}-{index}", openid=f"watchbench-{stamp}-{index}",
                                   nickname=f"bench{index}")
        tokens.append(token_issue(user=user))
    return lot_ids, tokens


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            children = []
        for child in children:
            found.append(int(child))
            frontier.append(int(child))
    return found


def percentiles_ms(recorded: list[dict], key: str) -> tuple[float, float]:
    values = sorted(value for part in recorded for value in part[key]) or [float("nan")]
    return values[len(values) // 2] * 1000, values[min(len(values) - 1, int(len(values) * 0.99))] * 1000


def cpu_seconds(pids: list[int]) -> float:
    return sum(proc_cpu_ticks(pid) for pid in pids) / CLK_TCK


def kernel_seconds(pids: list[int]) -> float:
    """The system (kernel) part: on loopback the sender's send() also runs the receiver's TCP."""
    return sum(int((proc_stat(pid) or [0] * 13)[12]) for pid in pids) / CLK_TCK


async def run(args, lot_ids: list[int], tokens: list[str]) -> None:
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LIVE_CHANNEL_PREFIX": f"watchbench-{int(time.time())}", "LIVE_MAX_SOCKETS_PER_IP": "1000000"}
    front = Nginx(tmp, "watchers-web")
    web = Server(app="project.wsgi", env=env, workers=args.web_workers, threads=1, log_path=tmp / "gunicorn.log",
                 extra=[], front=front)
    live_port = free_port()
    live_log = open(tmp / "uvicorn.log", "ab")
    # --nice: the ASGI processes under the bids' priority, as deploy/auction-live@.service runs them.
    nice = ["nice", "-n", str(args.live_nice)] if args.live_nice else []
    live = subprocess.Popen(
        [*nice, sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", HOST, "--port", str(live_port),
         "--workers", str(args.live_workers), "--lifespan", "off", "--no-access-log", "--backlog", "8192",
         "--ws", args.ws, "--ws-per-message-deflate", args.ws_per_message_deflate],
        cwd=ROOT, env=env, stdout=live_log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"ws://{HOST}:{live_port}/ws/v1/live"
    crowd = warm = None
    try:
        web.start("/api/v1/specials")
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"http://{HOST}:{live_port}/ws/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        # A few sockets first, so each worker has loaded what a socket needs: the
        # RSS that follows grows with the sockets, not with imports.
        warm = Crowd(url, lot_ids, 4 * args.live_workers, 1)
        await warm.ask("connect")
        await asyncio.sleep(1)
        rss_before = rss_kib(descendants(live.pid))
        log(f"bids alone: {args.seconds}s at {args.rate}/s")
        alone = await bids_elsewhere(args.seconds, args.rate, web.base, lot_ids, tokens)
        log(f"  {alone}")
        crowd = Crowd(url, lot_ids, args.watchers, args.client_procs)
        log(f"connecting {args.watchers} watchers over {args.lots} lots from {args.client_procs} processes")
        connected = await crowd.ask("connect")
        connect_seconds = max(part["seconds"] for part in connected)
        await asyncio.sleep(3)
        rss_idle = rss_kib(descendants(live.pid))
        log(f"  all connected in {connect_seconds:.1f}s, errors {sum(part['errors'] for part in connected)}")
        groups = {"asgi": descendants(live.pid), "wsgi": descendants(web.proc.pid) if web.proc else [],
                  "clients": crowd.pids(), "mariadbd": pids_by_comm(("mariadbd", "mysqld")),
                  "redis": pids_by_comm(("redis-server",)), "nginx": pids_by_comm(("nginx",))}
        cpu_before = {name: cpu_seconds(pids) for name, pids in groups.items()}
        kernel_before = {name: kernel_seconds(pids) for name, pids in groups.items()}
        await crowd.ask("record")
        with_watchers = await bids_elsewhere(args.seconds, args.rate, web.base, lot_ids, tokens)
        recorded = await crowd.ask("stop_recording")
        log(f"  with watchers: {with_watchers}")
        cpu_share = {name: round((cpu_seconds(pids) - cpu_before[name]) / args.seconds, 2) for name, pids in groups.items()}
        cpu_share["bidder"] = round(with_watchers["cpu_s"] / args.seconds, 2)
        kernel_share = {name: round((kernel_seconds(pids) - kernel_before[name]) / args.seconds, 2)
                        for name, pids in groups.items()}
        delivered = sum(part["messages"] for part in recorded) / args.seconds
        final = await asyncio.to_thread(final_states, lot_ids)

        async def stale_now() -> int:
            return sum(1 for lot_id, price in await crowd.last_prices() if price != final[lot_id][0])

        # The last coalesced messages: within a second normally; the hubs' resync
        # (LIVE_RESYNC_SECONDS) is the net under anything lost.
        stale_after = {}
        for mark in (1, 3, 20):
            await asyncio.sleep(mark - (max(stale_after) if stale_after else 0))
            stale_after[mark] = await stale_now()
        p50, p99 = percentiles_ms(recorded, "latencies")
        # The reconnect storm: everyone drops and comes back.
        storm = await crowd.ask("storm")
        alive = live.poll() is None and web.proc is not None and web.proc.poll() is None
        row = {
            "W": args.watchers, "L": args.lots, "bid_rate": args.rate, "client_procs": args.client_procs,
            "ws": args.ws, "deflate": args.ws_per_message_deflate, "live_nice": args.live_nice,
            "connect_s": round(connect_seconds, 1),
            "rss_per_socket_kib": round((rss_idle - rss_before) / max(args.watchers, 1), 1),
            "messages_per_s": round(delivered, 1),
            "commit_to_watcher_p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
            # The same split at the message's server_time (the server's clock, ms): written / on the wire and read.
            "commit_to_written_p50_p99_ms": [round(x, 1) for x in percentiles_ms(recorded, "server_side")],
            "written_to_read_p50_p99_ms": [round(x, 1) for x in percentiles_ms(recorded, "delivery")],
            "stale_final": stale_after[20], "stale_after_1_3_20_s": list(stale_after.values()),
            "bids_per_s_alone": round(alone["accepted_per_s"], 1),
            "bids_per_s_with_watchers": round(with_watchers["accepted_per_s"], 1),
            "bid_failures": alone["failed"] + with_watchers["failed"],
            "bid_p99_ms_alone_with": [alone["bid_p99_ms"], with_watchers["bid_p99_ms"]],
            "cpu_cores_during_bids": cpu_share,
            "of_which_kernel": kernel_share,
            # Server CPU per message delivered (the hubs' lot reads included), and the clients'.
            "asgi_us_per_message": round(cpu_share["asgi"] * 1e6 / delivered, 1) if delivered else None,
            "client_us_per_message": round(cpu_share["clients"] * 1e6 / delivered, 1) if delivered else None,
            "storm_s": round(max(part["seconds"] for part in storm), 1),
            "storm_snapshots": sum(part["snapshots"] for part in storm),
            "storm_errors": sum(part["errors"] for part in storm),
            "storm_5xx": sum(part.get("server_errors", 0) for part in storm),
            "storm_error_kinds": {kind: sum(part["error_kinds"].get(kind, 0) for part in storm)
                                  for kind in {kind for part in storm for kind in part["error_kinds"]}},
            "processes_alive": alive,
        }
        print(json.dumps(row))
    finally:
        for group in (crowd, warm):
            if group is not None:
                await group.close()
        web.stop()
        if live.poll() is None:
            live.terminate()
            try:
                live.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(live.pid, 9)
        except ProcessLookupError:
            pass
        live_log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--lots", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100, help="bids sent per second (open loop)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--bidders", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", "4")))
    parser.add_argument("--live-workers", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=2, help="processes the watchers are spread over")
    parser.add_argument("--live-nice", type=int, default=0, help="run uvicorn under nice -n N")
    parser.add_argument("--ws", default="auto", help="uvicorn --ws (auto, websockets, websockets-sansio, wsproto)")
    parser.add_argument("--ws-per-message-deflate", default="false", choices=("true", "false"),
                        help="uvicorn's compression (its default is true; deploy/auction-live@.service turns it off)")
    parser.add_argument("--fresh", action="store_true", help="drop the database first (it is always migrated)")
    parser.add_argument("--tmp", default=str(ROOT / "var" / "bench-watchers"))
    args = parser.parse_args()
    log(f"open files: {raise_open_files(args.watchers)}")
    prepare_database(args.fresh)
    lot_ids, tokens = seed(args.lots, args.bidders)
    asyncio.run(run(args, lot_ids, tokens))


if __name__ == "__main__":
    main()
