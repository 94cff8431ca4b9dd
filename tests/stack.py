"""The project's own processes for the end-to-end tests, started for real on the
test database: gunicorn (deploy/gunicorn.conf.py), uvicorn (the ASGI socket
processes), ``manage.py runjobs`` (the job cluster) and nginx with the shipped
deploy/nginx.conf. One place for how they are started, what environment they
get and how they are stopped (tests/test_e2e_cluster.py, tests/live_stack.py,
tests/test_faults.py, tests/test_nginx.py, tests/test_multiprocess.py).

Each process gets a process group of its own, so a stop (or a SIGKILL in a
fault test) reaches its children: gunicorn's workers, the cluster's.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

from tests.servers import terminate

BASE_DIR = Path(__file__).resolve().parents[1]
SHIPPED_NGINX_CONF = BASE_DIR / "deploy" / "nginx.conf"
# Set in a developer's shell, these would point the processes elsewhere.
ENV_DROPPED = ("DATABASE_URL", "REDIS_URL", "SQLITE_TEST_NAME", "Q_CLUSTER_NAME", "CACHE_KEY_PREFIX")

# No control socket: its default path (~/.gunicorn/gunicorn.ctl) is one per machine.
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--no-control-socket", "project.wsgi"]
UVICORN = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--lifespan", "off"]
RUNJOBS = [sys.executable, "manage.py", "runjobs", "--tick", "1"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_database_url() -> str:
    """The database pytest-django made for this run, as the processes' DATABASE_URL."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    if connection.vendor == "mysql":
        auth = quote(settings["USER"] or "root", safe="")
        if settings.get("PASSWORD"):
            auth += ":" + quote(settings["PASSWORD"], safe="")
        return f"mysql://{auth}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 3306}/{settings['NAME']}"
    pytest.skip(f"no end-to-end setup for {connection.vendor}")


def process_environment(var_dir: Path, *, run: str, **overrides: str) -> dict[str, str]:
    """What every process of one test run gets: the test database, the sandbox,
    and a queue and cache keys of its own (``run``), so nothing another run
    left behind reaches them. ``overrides`` last."""
    env = {key: value for key, value in os.environ.items() if key not in ENV_DROPPED}
    env.update(
        {
            "DATABASE_URL": process_database_url(),
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "1",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "AUCTION_SANDBOX": "1",
            "AUCTION_PAYMENT_GATEWAY": "sandbox",
            "AUCTION_VAR_DIR": str(var_dir),
            "Q_CLUSTER_NAME": run,
            "CACHE_KEY_PREFIX": run,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    env.update(overrides)
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    stop_signal: int

    def tail(self, chars: int = 20_000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """Ask the leader nicely (the cluster finishes its tasks), then end its whole group."""
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, self.stop_signal)
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the whole group at once: no handler runs, no task is finished."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait(timeout=10)


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, stop_signal: int) -> Proc:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches its children
        )
    return Proc(name=name, popen=popen, log_path=log_path, stop_signal=stop_signal)


def spawn_gunicorn(name: str, env: dict[str, str], log_dir: Path, *, port: int, workers: int = 2) -> Proc:
    """The production shape: deploy/gunicorn.conf.py on a loopback port."""
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    return spawn(name, GUNICORN, env, log_dir, signal.SIGINT)


def spawn_uvicorn(name: str, env: dict[str, str], log_dir: Path, *, port: int) -> Proc:
    return spawn(name, [*UVICORN, "--port", str(port)], env, log_dir, signal.SIGINT)


def spawn_runjobs(name: str, env: dict[str, str], log_dir: Path) -> Proc:
    return spawn(name, RUNJOBS, env, log_dir, signal.SIGTERM)


def answers(url: str, times: int = 1) -> bool:
    """``times`` 200s in a row (several, so every worker behind one port has loaded the URLconf)."""
    try:
        with httpx.Client(trust_env=False, timeout=5) as client:
            return all(client.get(url).status_code == 200 for _ in range(times))
    except httpx.TransportError:
        return False


def wait_for_processes(what: str, probe, procs: list[Proc], timeout: float = 60, interval: float = 0.2):
    """Poll ``probe`` until it returns something truthy; fail at once, with the logs, if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        dead = [proc for proc in procs if proc.popen.poll() is not None]
        if dead or time.monotonic() > deadline:
            reason = f"{dead[0].name} exited with {dead[0].popen.returncode}" if dead else f"not within {timeout:.0f}s"
            pytest.fail(f"{what}: {reason}\n{tails(procs)}")
        time.sleep(interval)


def tails(procs: list[Proc], chars: int = 6_000) -> str:
    return "\n".join(f"--- {proc.name} (exit {proc.popen.poll()}) ---\n{proc.tail(chars)}" for proc in procs)


def gunicorn_workers(master: int) -> list[int]:
    """The pids whose parent is ``master`` (from /proc)."""
    workers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                workers.append(int(entry))
    return workers


# --- nginx ---------------------------------------------------------------------------------------------------


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if os.path.exists(path)), None)


def _upstream(name: str, servers: list[str]) -> str:
    lines = "".join(f"    server {server};\n" for server in servers)
    return f"upstream {name} {{\n    least_conn;\n{lines}}}"


def nginx_site_for_test(conf: str, *, port: int, redirect_port: int, web: list[str], live: list[str],
                        var_dir: Path | None = None) -> str:
    """The shipped site, changed only where a test must: loopback ports for 443
    and 80 (no TLS), these upstreams, and (``var_dir``) the test's media folder."""
    replacements = {
        "listen 80 default_server;": f"listen 127.0.0.1:{port} default_server;",
        "listen 443 ssl default_server;": "",
        "ssl_reject_handshake on;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{port};",
        "listen 80;": f"listen 127.0.0.1:{redirect_port};",
    }
    if var_dir is not None:
        replacements["/srv/auction/var/"] = f"{var_dir}/"
    for shipped, tested in replacements.items():
        assert shipped in conf, shipped
        conf = conf.replace(shipped, tested)
    for name, servers in (("auction_web", web), ("auction_live", live)):
        conf, found = re.subn(rf"upstream {name} \{{[^}}]*\}}", _upstream(name, servers), conf)
        assert found == 1, f"upstream {name} not in the shipped nginx.conf"
    return "\n".join(line for line in conf.splitlines() if "ssl_certificate" not in line)


class Nginx:
    """The real nginx on loopback, in a folder of its own, in the foreground."""

    def __init__(self, folder: Path, site: str, *, port: int, access_log: str = "access_log off;"):
        binary = nginx_binary()
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("nginx is not installed (scripts/system-packages.sh nginx)", pytrace=False)
            pytest.skip("nginx is not installed: scripts/system-packages.sh nginx")
        self.folder, self.port = folder, port
        temp = " ".join(f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (folder / "nginx.conf").write_text(
            f"daemon off; worker_processes 1; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'} warn;\n"
            + ("user root;\n" if os.geteuid() == 0 else "")
            + f"events {{ worker_connections 256; }}\nhttp {{ {access_log}\n{temp}\n{site}\n}}\n"
        )
        self.popen = subprocess.Popen([binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                                      stdout=subprocess.DEVNULL, stderr=open(folder / "stderr.log", "wb"),
                                      start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.popen.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"nginx did not start: {self.log()}")
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return "".join((self.folder / name).read_text(errors="replace") for name in ("stderr.log", "error.log")
                       if (self.folder / name).exists())

    def stop(self) -> None:
        terminate(self.popen)
