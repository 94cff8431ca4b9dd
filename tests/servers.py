"""Real servers of our own for the fault tests: redis-server and mariadbd on
free ports of their own (kept across a restart), in a temporary directory,
stopped, hung and restarted at will; two test runs at once never share one.
And an S3-compatible server (moto's server mode) for media on object storage."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

# The web servers the fault tests start take ports from here (AUCTION_TEST_PORT_BASE, default 18400).
PORT_BASE = int(os.environ.get("AUCTION_TEST_PORT_BASE", "18400"))
START_SECONDS = 15


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(what: str, probe, timeout: float = START_SECONDS, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def closed_port() -> int:
    """A port where nothing listens (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def terminate(popen: subprocess.Popen | None, *, timeout: float = 10) -> None:
    """SIGTERM and a wait for it; SIGKILL if it has not gone by then."""
    if popen and popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=timeout)


class RedisServer:
    """redis-server without persistence: a restart starts empty, like a crashed cache."""

    def __init__(self, directory: Path, port: int | None = None):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.directory, self.port = directory, port or closed_port()
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert not port_is_open(self.port), f"port {self.port} is taken"
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.directory)]
        self.popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until("redis-server listening", lambda: port_is_open(self.port))

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGCONT)  # a hung one must still hear its end
            self.popen.kill()
            self.popen.wait(timeout=10)

    def hang(self) -> None:
        os.kill(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.popen.pid, signal.SIGCONT)


class MariaDBServer:
    """mariadbd on a data directory of its own; no grant tables (root, no password, loopback only)."""

    def __init__(self, directory: Path, port: int | None = None):
        if shutil.which("mariadbd") is None or shutil.which("mariadb-install-db") is None:
            pytest.skip("mariadbd is not installed")
        self.directory, self.port = directory, port or closed_port()
        self.datadir = directory / "data"
        self.popen: subprocess.Popen | None = None

    def install(self) -> None:
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--auth-root-authentication-method=normal",
             "--skip-test-db", f"--user={_user()}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )

    def start(self) -> None:
        assert not port_is_open(self.port), f"port {self.port} is taken"
        args = ["mariadbd", "--no-defaults", f"--user={_user()}", f"--datadir={self.datadir}",
                f"--socket={self.directory / 'mariadb.sock'}", f"--port={self.port}", "--bind-address=127.0.0.1",
                "--skip-grant-tables", f"--pid-file={self.directory / 'mariadb.pid'}", "--innodb-buffer-pool-size=64M",
                f"--log-error={self.directory / 'error.log'}", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci"]
        self.popen = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until("mariadbd answering", self.answers)

    def answers(self) -> bool:
        return subprocess.run(self.client_args("-e", "SELECT 1"), capture_output=True, timeout=10).returncode == 0

    def client_args(self, *args: str) -> list[str]:
        return ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{self.port}", "-uroot", *args]

    def kill(self) -> None:
        """SIGKILL: no clean shutdown; InnoDB recovers from its log at the next start."""
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def copy_database(self, *, source_url_args: list[str], source_name: str, name: str) -> None:
        """The source database, schema and rows, as ``name`` here."""
        subprocess.run(
            self.client_args("-e", f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
            check=True, timeout=20,
        )
        dump = subprocess.run(["mariadb-dump", "--no-defaults", *source_url_args, "--single-transaction", source_name],
                              check=True, capture_output=True, timeout=60)
        subprocess.run(self.client_args(name), input=dump.stdout, check=True, timeout=60)

    def query(self, database: str, sql: str) -> list[list[str]]:
        out = subprocess.run(self.client_args("-N", "-B", database, "-e", sql), check=True, capture_output=True,
                             timeout=20, text=True).stdout
        return [line.split("\t") for line in out.splitlines()]


class S3Server:
    """moto's server mode: a real S3 HTTP API on loopback (no AWS, no mock of boto
    in the process under test), in a process of its own on a free port."""

    ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"

    def __init__(self, directory: Path, port: int | None = None):
        import importlib.util

        if importlib.util.find_spec("moto") is None:
            pytest.skip("moto is not installed (requirements/dev.txt)")
        self.directory, self.port = directory, port or closed_port()
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import sys

        assert not port_is_open(self.port), f"port {self.port} is taken"
        # Credentials moto needs none of; set so no boto3 in it looks further.
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
               "AWS_DEFAULT_REGION": self.REGION, "NO_PROXY": "127.0.0.1,localhost"}
        with open(self.directory / "moto.log", "wb") as log:
            self.popen = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until("moto's S3 server listening", lambda: port_is_open(self.port), timeout=60)

    def client(self):
        """boto3 on this server, to look into the buckets."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY,
                            region_name=self.REGION, config=Config(s3={"addressing_style": "path"}, proxies={}))

    def stop(self) -> None:
        terminate(self.popen)


def _user() -> str:
    import getpass

    return getpass.getuser()
