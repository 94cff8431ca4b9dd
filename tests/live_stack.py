"""Real processes for the live room's tests: ASGI servers (uvicorn), the HTTP
server that takes bids, and the job cluster, all on the test database, plus
real WebSocket clients (``websockets``' sync client).

On the embedded default (SQLite) every server is ``uvicorn project.asgi``,
as ``make run`` starts it, and announcements travel through the LiveChange
log; on the services (MariaDB + Redis) bids go to gunicorn, as in production,
and announcements through Redis pub/sub.
"""

import importlib.util
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.stack import Proc, answers, free_port, process_environment, spawn_gunicorn, spawn_runjobs, spawn_uvicorn

WAIT_SECONDS = 30


@dataclass
class Watcher:
    """One socket and everything it received, in order."""

    name: str
    url: str
    token: str | None = None
    headers: dict[str, str] | None = None  # more handshake headers (an admin's Cookie and Origin)
    messages: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(self.headers or {})
        self.socket = connect(self.url, additional_headers=headers or None, open_timeout=15, proxy=None, legacy=True)
        self.closed = False

    def send(self, **message) -> None:
        self.socket.send(json.dumps(message))

    def pump(self, seconds: float) -> None:
        """Read what arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                self.messages.append(json.loads(self.socket.recv(timeout=left)))
            except TimeoutError:
                return
            except ConnectionClosed:
                self.closed = True

    def wait_for(self, what: str, probe, timeout: float = WAIT_SECONDS, stack=None):
        """Read until ``probe(message)`` holds for a message received; that message."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.messages[seen:]:
                if probe(message):
                    return message
            seen = len(self.messages)
            if self.closed or time.monotonic() > deadline:
                tails = stack.tails() if stack else ""
                pytest.fail(f"{self.name}: {what} not within {timeout:.0f}s; got {self.messages}\n{tails}")
            self.pump(min(0.5, max(deadline - time.monotonic(), 0.01)))

    def of_type(self, kind: str) -> list[dict]:
        return [message for message in self.messages if message["type"] == kind]

    def close(self) -> None:
        self.socket.close()
        self.closed = True


@dataclass
class LiveStack:
    web_url: str
    live_urls: list[str]
    procs: list[Proc] = field(default_factory=list)
    watchers: list[Watcher] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)

    def tails(self) -> str:
        return "\n".join(f"--- {proc.name} (exit {proc.popen.poll()}) ---\n{proc.tail(6000)}" for proc in self.procs)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is not None:
                pytest.fail(f"{proc.name} exited with {proc.popen.returncode}:\n{self.tails()}")

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=f"{self.web_url}/api/v1", headers=headers, trust_env=False, timeout=15)
        self.clients.append(client)
        return client

    def watcher(self, name: str, process: int, token: str | None = None, headers: dict[str, str] | None = None) -> Watcher:
        url = self.live_urls[process].replace("http://", "ws://") + "/ws/v1/live"
        watcher = Watcher(name=name, url=url, token=token, headers=headers)
        self.watchers.append(watcher)
        return watcher

    def health(self, process: int) -> dict:
        return httpx.get(f"{self.live_urls[process]}/ws/health", trust_env=False, timeout=5).json()

    def stop(self) -> None:
        for watcher in self.watchers:
            try:
                watcher.close()
            except Exception:  # noqa: BLE001  (already gone)
                pass
        for client in self.clients:
            client.close()
        for proc in reversed(self.procs):
            proc.stop()


def _wait(what: str, probe, stack: LiveStack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        stack.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s\n{stack.tails()}")
        time.sleep(0.2)


def start_live_stack(tmp_path: Path, *, live_processes: int = 2, jobs: bool = True, **live_env: str) -> LiveStack:
    run = uuid.uuid4().hex[:10]
    env = process_environment(
        tmp_path / "var",
        run=f"live-{run}",
        # The test process publishes too (an editor's change): same channels.
        LIVE_CHANNEL_PREFIX=settings.LIVE_CHANNEL_PREFIX,
        LIVE_POLL_SECONDS="0.1",
        **live_env,
    )
    live_ports = [free_port() for _ in range(live_processes)]
    stack = LiveStack(web_url="", live_urls=[f"http://127.0.0.1:{port}" for port in live_ports])
    try:
        for index, port in enumerate(live_ports):
            stack.procs.append(spawn_uvicorn(f"live{index + 1}", env, tmp_path, port=port))
        web_port = free_port()
        stack.web_url = f"http://127.0.0.1:{web_port}"
        if connection.vendor != "sqlite" and importlib.util.find_spec("gunicorn"):
            # Production's shape: bids on the WSGI workers, sockets on the ASGI processes.
            stack.procs.append(spawn_gunicorn("gunicorn", env, tmp_path, port=web_port))
        else:
            # The embedded default: the same ASGI server takes the bids (make run).
            stack.procs.append(spawn_uvicorn("web", env, tmp_path, port=web_port))
        if jobs:
            stack.procs.append(spawn_runjobs("runjobs", env, tmp_path))
        for url in stack.live_urls:
            _wait(f"{url} answering", lambda url=url: answers(f"{url}/ws/health"), stack)
        _wait("the web server answering", lambda: answers(f"{stack.web_url}/api/v1/specials"), stack)
    except BaseException:
        stack.stop()
        print(stack.tails())
        raise
    return stack


def login(stack: LiveStack, nickname: str) -> tuple[httpx.Client, str]:
    with stack.api() as client:
        response = client.post("/auth/sandbox", json={"openid": f"live-{uuid.uuid4().hex}", "nickname": nickname})
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    return stack.api(token), token


def pay_deposit(api: httpx.Client, lot_id: int) -> dict:
    created = api.post("/deposits", json={"lot_id": lot_id})
    assert created.status_code == 201, created.text
    paid = api.post(f"/payments/sandbox/{created.json()['payment']['out_trade_no']}/succeed")
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text
    return created.json()["deposit"]
