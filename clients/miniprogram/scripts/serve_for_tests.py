"""The real server for the client's tests (test/global-setup.ts starts it).

    serve_for_tests.py serve
        A fresh embedded-default stack in a temporary directory, as `make run`
        makes it: migrate, the demo, `uvicorn project.asgi` (HTTP and the live
        socket) and the job cluster (`manage.py runjobs --tick 1`), with the
        sandbox on. Prints one JSON line when it answers ({"url", "pid",
        "env", ...}); runs until stdin closes or SIGTERM. SIGUSR1 kills uvicorn
        and starts it again on the same port: every socket drops, as when a
        server restarts.

    serve_for_tests.py end-lot LOT_ID SECONDS
        With the "env" the server printed: the lot ends SECONDS from now
        (the exact-time job is scheduled and the live room told, as publishing
        does), so a test sees settlement without waiting for the demo's clock.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
START_SECONDS = 120
# Set in a developer's shell, these would point the stack at other services.
DROPPED = ("DATABASE_URL", "REDIS_URL", "REDIS_CACHE_URL", "SQLITE_TEST_NAME", "Q_CLUSTER_NAME", "CACHE_KEY_PREFIX")


def free_port() -> int:
    base = os.environ.get("AUCTION_TEST_PORT_BASE")
    candidates = [int(base) + offset for offset in range(900, 1000)] if base else [0]
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def answers(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


class Stack:
    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="auction-client-test-"))
        run = uuid.uuid4().hex[:10]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {key: value for key, value in os.environ.items() if key not in DROPPED}
        self.env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.directory / 'db.sqlite3'}",
                "DJANGO_SETTINGS_MODULE": "project.settings",
                "DJANGO_DEBUG": "1",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "AUCTION_SANDBOX": "1",
                "AUCTION_PAYMENT_GATEWAY": "sandbox",
                "AUCTION_VAR_DIR": str(self.directory / "var"),
                "Q_CLUSTER_NAME": f"client-{run}",
                "CACHE_KEY_PREFIX": f"client-{run}",
                "LIVE_POLL_SECONDS": "0.1",
                "PYTHONUNBUFFERED": "1",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarting = False

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def run(self, *args: str) -> None:
        with open(self.log("setup"), "ab") as log:
            subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True, timeout=300)

    def spawn(self, name: str, args: list[str]) -> None:
        with open(self.log(name), "ab") as log:
            self.procs[name] = subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)

    def start_web(self) -> None:
        self.spawn("web", [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1",
                           "--port", str(self.port), "--lifespan", "off", "--no-access-log"])
        self.wait_until("the web server", lambda: answers(f"{self.url}/api/v1/specials") and answers(f"{self.url}/ws/health"))

    def wait_until(self, what: str, probe) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not probe():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not answering within {START_SECONDS}s\n{self.tail('web')}")
            time.sleep(0.2)

    def start(self) -> None:
        self.run("migrate", "--noinput")
        self.run("demo")
        self.spawn("jobs", [sys.executable, "manage.py", "runjobs", "--tick", "1"])
        self.start_web()

    def restart_web(self) -> None:
        self.restarting = True
        try:
            self.stop_one("web", signal.SIGKILL)
            self.start_web()
        finally:
            self.restarting = False

    def stop_one(self, name: str, first_signal: int) -> None:
        proc = self.procs.get(name)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, first_signal)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its workers, if any are left
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(timeout=10)

    def stop(self) -> None:
        self.stop_one("web", signal.SIGINT)
        self.stop_one("jobs", signal.SIGTERM)
        if not os.environ.get("AUCTION_CLIENT_TEST_KEEP"):
            shutil.rmtree(self.directory, ignore_errors=True)

    def tail(self, name: str, chars: int = 4000) -> str:
        try:
            return self.log(name).read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def serve() -> int:
    stack = Stack()
    stopping = threading.Event()
    restart = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGUSR1, lambda *_: restart.set())
    # The test runner gone (its end of stdin closed): stop too, leave nothing running.
    threading.Thread(target=lambda: (sys.stdin.read(), stopping.set()), daemon=True).start()
    try:
        stack.start()
        print(json.dumps({"url": stack.url, "pid": os.getpid(), "env": stack.env, "python": sys.executable,
                          "script": str(Path(__file__).resolve()), "logs": str(stack.directory)}), flush=True)
        while not stopping.wait(0.2):
            if restart.is_set():
                restart.clear()
                stack.restart_web()
                print(json.dumps({"restarted": stack.url}), flush=True)
        return 0
    except Exception as error:  # noqa: BLE001  (the test run shows why the server did not come up)
        print(f"serve_for_tests: {error}\n--- setup ---\n{stack.tail('setup')}\n--- jobs ---\n{stack.tail('jobs')}",
              file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()


def end_lot(lot_id: int, seconds: float) -> int:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from auction import signals
    from auction.models import Lot
    from auction.services.live import live_lot_changed
    from auction.services.market_rows import market_rows_update

    ends_at = timezone.now() + timedelta(seconds=seconds)
    with transaction.atomic():
        if not market_rows_update(Lot.objects.filter(pk=lot_id), ends_at=ends_at):
            print(f"no lot {lot_id}", file=sys.stderr)
            return 1
        signals.lot_end_changed.send(sender=Lot, lot_id=lot_id, ends_at=ends_at)
        live_lot_changed(lot_id=lot_id)
    print(json.dumps({"lot": lot_id, "ends_at": ends_at.isoformat()}), flush=True)
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "serve":
        sys.exit(serve())
    if command == "end-lot" and len(sys.argv) == 4:
        sys.exit(end_lot(int(sys.argv[2]), float(sys.argv[3])))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
