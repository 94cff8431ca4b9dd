"""The watchers of bench/watchers.py: W sockets over a few processes, driven over pipes."""

import asyncio
import json
import os
import time
from datetime import datetime
from pathlib import Path

from lean_clients import LeanSocket

DUMP = os.environ.get("BENCH_WATCHERS_DUMP")  # a file name: every message's timings, for looking into the tail


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
        self.error_kinds: dict[str, int] = {}
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
            kind = f"{type(error).__name__}: {str(error)[:60]}"
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
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
            before, watchers.errors, watchers.server_errors, watchers.error_kinds = watchers.snapshots, 0, 0, {}
            seconds = await watchers.connect_all()
            conn.send({"seconds": seconds, "snapshots": watchers.snapshots - before, "errors": watchers.errors,
                       "server_errors": watchers.server_errors, "error_kinds": watchers.error_kinds})
        elif command == "exit":
            await watchers.drop_all()
            conn.send(None)
            return


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
        return [pair for (_, lots), prices in zip(self.parts, answers, strict=True) for pair in zip(lots, prices, strict=True)]

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ask("exit"), timeout=60)
        except Exception:  # noqa: BLE001
            pass
        for process, _ in self.parts:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
