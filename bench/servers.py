"""What a benchmark starts and always stops: gunicorn, nginx in front, py-spy, wrk (bench/ only)."""

import os
import signal
import subprocess
import time
from pathlib import Path

from machine import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
GUNICORN = str(VENV_BIN / "gunicorn")
DEFAULT_WORKER_CLASS = "sync"  # deploy/gunicorn.conf.py's


class Server:
    """gunicorn with deploy/gunicorn.conf.py in its own session; always stopped."""

    def __init__(self, *, app: str, env: dict, workers: int, threads: int, log_path: Path, extra: list[str], pythonpath: str | None = None,
                 front: "Nginx | None" = None, worker_class: str = "sync"):
        self.port = free_port()
        self.log_path = log_path
        self.front = front
        self.env = {
            **env,
            "GUNICORN_BIND": f"unix:{front.upstream}" if front else f"{HOST}:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_WORKER_CLASS": worker_class,
        }
        # --no-control-socket: gunicorn 27 otherwise binds ~/.gunicorn/gunicorn.ctl, shared with any other gunicorn here.
        self.cmd = [GUNICORN, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--no-control-socket"]
        if pythonpath:
            self.cmd += ["--pythonpath", pythonpath]
        self.cmd += [*extra, app]
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base(self) -> str:
        return self.front.base if self.front else f"http://{HOST}:{self.port}"

    def start(self, ready_path: str, timeout: float = 90) -> None:
        self._log = open(self.log_path, "ab")
        if self.front:
            self.front.start()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.base + ready_path, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer {ready_path} within {timeout}s; see {self.log_path}")

    def boots(self) -> int:
        """Workers booted so far (a restart after max_requests boots one more)."""
        try:
            return self.log_path.read_text(errors="replace").count("Booting worker with pid")
        except OSError:
            return 0

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the session we started (workers included).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        if self.front:
            self.front.stop()
        if self._log:
            self._log.close()
            self._log = None


class Nginx:
    """nginx in front of gunicorn, as in production (deploy/nginx.conf), without TLS.

    Clients keep their connections to nginx; nginx hands each request to gunicorn
    over a unix socket. A sync worker closes the connection after each answer,
    so every request queues in the ONE accept queue of gunicorn's socket, in
    the order it arrived, whichever worker takes it; gthread workers keep the
    upstream connections alive (each its own).
    """

    def __init__(self, tmp: Path, name: str):
        self.port = free_port()
        self.dir = tmp / f"nginx-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.upstream = str(self.dir / "gunicorn.sock")
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port, upstream=self.upstream, host=HOST))
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        if self.proc is None:
            self.proc = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(self.conf)], cwd=self.dir,
                                         stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "ab"), start_new_session=True)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None


NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    upstream app {{ server unix:{upstream}; keepalive 64; }}
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto http;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


class Profiler:
    """py-spy on every gunicorn worker (--subprocesses), collapsed stacks, idle included.

    Idle stacks are kept so time spent waiting (MariaDB row lock, round
    trips, Redis) shows up; bench/profile_summary.py reads the files.
    """

    def __init__(self, out_dir: str | None, rate: int):
        self.out_dir = Path(out_dir) if out_dir else None
        self.rate = rate
        self.proc: subprocess.Popen | None = None

    def start(self, pid: int, name: str, seconds: int) -> None:
        if not self.out_dir:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--idle", "--nonblocking",
               "--rate", str(self.rate), "--duration", str(seconds), "--format", "raw", "--output", str(self.out_dir / f"{name}.txt")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)  # let it attach before the load starts

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def run_wrk(cmd: list[str], out_path: Path, timeout: float) -> str:
    env = {**os.environ, "BENCH_OUT": str(out_path)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out.decode(errors='replace')}")
    return out.decode(errors="replace")
