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
import random
import subprocess
import sys
import time
from datetime import datetime
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

DUMP = os.environ.get("BENCH_WATCHERS_DUMP")  # a file name: every message's timings, for looking into the tail

from machine import CLK_TCK, HOST, free_port, log, pids_by_comm, proc_cpu_ticks, proc_stat  # noqa: E402
from servers import Nginx, Server  # noqa: E402


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


class LeanSocket(asyncio.Protocol):
    """A `websockets` client on its Sans-I/O protocol (handshake, framing, answering the
    server's pings) under a bare asyncio Protocol: the harness's own CPU per message
    is the smaller part of this box then. At W = 5,000 its asyncio client cost ~65 µs
    of CPU a message (a future and a queue per recv), this ~45, the kernel's ~15 of
    it included. A frame's text is handed to ``on_text`` as it is parsed."""

    def __init__(self, url: str, on_text):
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.protocol = ClientProtocol(parse_uri(url))
        self.on_text = on_text
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closing = False
        self.transport = None

    @classmethod
    async def open(cls, url: str, on_text) -> "LeanSocket":
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        _, socket = await asyncio.wait_for(loop.create_connection(lambda: cls(url, on_text), uri.host, uri.port), 60)
        await asyncio.wait_for(socket.opened, 60)
        return socket

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Opcode
        from websockets.http11 import Response

        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    self.opened.set_exception(self.protocol.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif event.opcode is Opcode.TEXT:
                self.on_text(event.data)
        self.flush()  # pongs to the server's pings, the close handshake

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)


class Watchers:
    def __init__(self, url: str, lots: list[int]):
        self.url = url
        self.lots = lots
        self.last: list[dict | None] = [None] * len(lots)
        self.sockets: list = [None] * len(lots)
        self.tasks: list[asyncio.Task] = []
        self.latencies: list[float] = []
        self.server_side: list[float] = []  # commit -> the message's server_time
        self.delivery: list[float] = []  # server_time -> received here
        self.timeline: list[tuple] = []
        self.messages = 0
        self.snapshots = 0
        self.errors = 0
        self.server_errors = 0  # handshakes answered 5xx
        self.recording = False

    def on_text(self, index: int, text: bytes | str, ready: list) -> None:
        message = json.loads(text)
        kind = message["type"]
        if kind == "snapshot":
            self.snapshots += 1
            self.last[index] = {"price": message["lot"]["current_price"], "version": message["version"]}
            if ready:
                ready.pop().set()
        elif kind == "lot":
            self.messages += 1
            self.last[index] = {"price": message["lot"]["current_price"], "version": message["version"]}
            if self.recording and message.get("committed_at"):
                received = time.time()
                committed = datetime.fromisoformat(message["committed_at"]).timestamp()
                sent = datetime.fromisoformat(message["server_time"]).timestamp()
                self.latencies.append(received - committed)
                # Where the time went: before the server wrote the message, and after.
                self.server_side.append(sent - committed)
                self.delivery.append(received - sent)
                if DUMP:
                    self.timeline.append((received, sent - committed, received - sent, self.lots[index]))

    async def one(self, index: int, ready: asyncio.Event | None) -> None:
        waiting = [ready] if ready is not None else []
        socket = None
        try:
            socket = await LeanSocket.open(self.url, lambda text: self.on_text(index, text, waiting))
            self.sockets[index] = socket
            socket.send_text(json.dumps({"op": "watch", "lot_ids": [self.lots[index]]}))
            await socket.closed
            if not socket.closing:
                raise ConnectionError(f"closed by the server: {socket.protocol.close_code}")
        except asyncio.CancelledError:
            if socket is not None:
                socket.close()
            raise
        except Exception as error:  # noqa: BLE001
            self.errors += 1
            status = getattr(getattr(error, "response", None), "status_code", 0)
            if status >= 500:
                self.server_errors += 1
            for event in waiting:
                event.set()

    async def ping_all(self) -> None:
        """Every socket says something within the server's 60 s idle limit, each at its own
        moment as phones do (a twenty-fifth of them each second): all at once, 2,500 pings a
        process made a burst of pongs that held the other messages back for two seconds."""
        turn = 0
        while True:
            await asyncio.sleep(1)
            turn = (turn + 1) % 25
            for socket in self.sockets[turn::25]:
                if socket is not None:
                    try:
                        socket.send_text('{"op":"ping"}')
                    except Exception:  # noqa: BLE001  (a socket gone: its task saw it)
                        pass

    async def connect_all(self) -> float:
        started = time.monotonic()
        readies = []
        for index in range(len(self.lots)):
            ready = asyncio.Event()
            readies.append(ready)
            self.tasks.append(asyncio.create_task(self.one(index, ready)))
            if index % 200 == 199:
                await asyncio.sleep(0.05)  # a little pacing, like phones arriving
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), timeout=600)
        return time.monotonic() - started

    async def drop_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


class LeanHTTP:
    """Keep-alive HTTP/1.1 connections to nginx, a pool of them, for the bidder: httpx
    took ~2.4 ms of CPU a bid here (a fifth of a core at 100 bids/s, on the box the
    server shares), this ~0.9 ms. Only what nginx answers: Content-Length or chunked
    bodies."""

    def __init__(self, base: str, size: int):
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        self.host, self.port, self.prefix = parts.hostname, parts.port or 80, parts.path.rstrip("/")
        self.idle: list = []
        self.slots = asyncio.Semaphore(size)

    async def post_json(self, path: str, body: dict, token: str) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        head = (f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
        async with self.slots:
            reader, writer = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(head + payload)
                status, answer, keep = await asyncio.wait_for(self._read(reader), 30)
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status, answer

    @staticmethod
    async def _read(reader) -> tuple[int, bytes, bool]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            answer = b"".join(chunk[:-2] for chunk in chunks)
        else:
            answer = await reader.readexactly(int(headers.get("content-length", 0)))
        return status, answer, headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def bid_for(seconds: float, rate: float, base: str, lot_ids: list[int], tokens: list[str],
                  current: dict[int, tuple[int, int]]) -> dict:
    """Open loop: ``rate`` bids a second, each at the lot's next price as this bidder
    last learnt it plus one step per bid sent since (a fixed step of 1,000 fen), so a
    bid is valid when sent and is refused only when overtaken in flight."""
    accepted = refused = failed = 0
    statuses: dict = {}
    latencies: list[float] = []
    prices = {lot_id: price + 1000 for lot_id, (price, _) in current.items()}
    client = LeanHTTP(base + "/api/v1", 64)
    pending: set[asyncio.Task] = set()

    async def one(lot_id: int, token: str) -> None:
        nonlocal accepted, refused, failed
        price = prices[lot_id]
        prices[lot_id] = price + 1000
        sent_at = time.monotonic()
        try:
            status, answer = await client.post_json(f"/lots/{lot_id}/bids", {"price": price}, token)
            latencies.append(time.monotonic() - sent_at)
            if status == 201:
                accepted += 1
            elif status == 409:
                refused += 1
                body = json.loads(answer)
                statuses[body.get("code")] = statuses.get(body.get("code"), 0) + 1
                detail = body.get("detail") or {}
                if "next_min_bid" in detail:
                    prices[lot_id] = max(prices[lot_id], detail["next_min_bid"])
            else:
                failed += 1
                statuses[status] = statuses.get(status, 0) + 1
        except Exception as exc:  # noqa: BLE001
            failed += 1
            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1

    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            task = asyncio.create_task(one(random.choice(lot_ids), random.choice(tokens)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.005)
    if pending:
        await asyncio.wait(pending, timeout=30)
    elapsed = time.monotonic() - started
    client.close()
    latencies.sort()
    at = lambda q: round(latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000, 1) if latencies else None  # noqa: E731
    return {"accepted_per_s": accepted / elapsed, "accepted": accepted, "refused": refused, "failed": failed, "sent": sent,
            "other_answers": statuses, "bid_p50_ms": at(0.5), "bid_p99_ms": at(0.99)}


def final_states(lot_ids: list[int]) -> dict[int, tuple[int, int]]:
    from django.db import close_old_connections

    from auction.models import Lot

    close_old_connections()
    return {lot_id: (price, version) for lot_id, price, version in
            Lot.objects.filter(pk__in=lot_ids).values_list("pk", "current_price", "version")}


# The watchers and the bidder live in processes of their own: in one asyncio loop
# with 5,000 sockets the bidder itself was starved (100 bids/s offered, 20 sent)
# and every latency carried the loop's own lag.

def watcher_process(conn, url: str, lots: list[int]) -> None:
    asyncio.run(watcher_main(conn, url, lots))


async def watcher_main(conn, url: str, lots: list[int]) -> None:
    watchers = Watchers(url, lots)
    pinger = asyncio.create_task(watchers.ping_all())  # noqa: F841  (runs as long as the process)
    while True:
        command = await asyncio.to_thread(conn.recv)
        if command == "connect":
            seconds = await watchers.connect_all()
            conn.send({"seconds": seconds, "errors": watchers.errors})
        elif command == "record":
            watchers.latencies, watchers.recording, watchers.messages = [], True, 0
            watchers.server_side, watchers.delivery = [], []
            conn.send(None)
        elif command == "stop_recording":
            watchers.recording = False
            if DUMP:
                Path(f"{DUMP}.{os.getpid()}").write_text(json.dumps(watchers.timeline))
            conn.send({"latencies": watchers.latencies, "messages": watchers.messages,
                       "server_side": watchers.server_side, "delivery": watchers.delivery})
        elif command == "last":
            conn.send([None if last is None else last["price"] for last in watchers.last])
        elif command == "storm":
            await watchers.drop_all()
            before, watchers.errors, watchers.server_errors = watchers.snapshots, 0, 0
            seconds = await watchers.connect_all()
            conn.send({"seconds": seconds, "snapshots": watchers.snapshots - before, "errors": watchers.errors,
                       "server_errors": watchers.server_errors})
        elif command == "exit":
            await watchers.drop_all()
            conn.send(None)
            return


def bidder_process(conn, seconds: float, rate: float, base: str, lot_ids: list[int], tokens: list[str]) -> None:
    import django

    django.setup()  # the lots' prices to start from
    try:
        current = final_states(lot_ids)
        started = time.process_time()
        result = asyncio.run(bid_for(seconds, rate, base, lot_ids, tokens, current))
        conn.send({**result, "cpu_s": time.process_time() - started})
    except BaseException as exc:
        conn.send({"error": repr(exc)})
        raise


class Crowd:
    """W watchers split over --client-procs processes, driven by commands over pipes."""

    def __init__(self, url: str, lot_ids: list[int], count: int, procs: int):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.lots = [lot_ids[index % len(lot_ids)] for index in range(count)]
        self.parts, self.pipes = [], []
        for part in range(procs):
            lots = self.lots[part::procs]
            parent, child = context.Pipe()
            process = context.Process(target=watcher_process, args=(child, url, lots), daemon=True)
            process.start()
            self.parts.append((process, lots))
            self.pipes.append(parent)

    async def ask(self, command: str) -> list:
        for pipe in self.pipes:
            pipe.send(command)
        return [await asyncio.to_thread(pipe.recv) for pipe in self.pipes]

    def pids(self) -> list[int]:
        return [process.pid for process, _ in self.parts]

    async def last_prices(self) -> list[tuple[int, int | None]]:
        answers = await self.ask("last")
        return [pair for (_, lots), prices in zip(self.parts, answers) for pair in zip(lots, prices)]

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ask("exit"), timeout=60)
        except Exception:  # noqa: BLE001
            pass
        for process, _ in self.parts:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


async def bids_elsewhere(seconds: float, rate: float, base: str, lot_ids: list[int], tokens: list[str]) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=bidder_process, args=(child, seconds, rate, base, lot_ids, tokens), daemon=True)
    process.start()
    result = await asyncio.to_thread(parent.recv)
    process.join(timeout=10)
    if "error" in result:
        raise RuntimeError(f"the bidder failed: {result['error']}")
    return result


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
