"""A real server on a throwaway SQLite database, and headless Chromium to drive it.

Nothing here uses pytest-django's database: the server is ``manage.py
runserver`` in a subprocess with its own ``AUCTION_VAR_DIR``, so the browser
tests run the same whether the rest of the suite uses SQLite or MariaDB.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import terminate

BASE_DIR = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
FINAL_SCREENSHOT = Path("/tmp/browser-test-final.png")
EDITOR_USERNAME = "editor"
EDITOR_PASSWORD = "pw-for-the-browser-test-1"
# Settings a developer's shell may carry that would point the server elsewhere.
ENV_DROPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_MEDIA_ROOT",
    "DJANGO_MEDIA_URL",
    "DJANGO_STATIC_ROOT",
    "DJANGO_STATIC_URL",
    "SQLITE_TEST_NAME",
)


@dataclass(frozen=True)
class Server:
    url: str
    username: str
    password: str
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(var_dir: Path, url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ENV_DROPPED}
    env.update(
        {
            "AUCTION_VAR_DIR": str(var_dir),
            "DJANGO_DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "AUCTION_SERVE_MEDIA": "1",
            "WAGTAILADMIN_BASE_URL": url,
            "DJANGO_SUPERUSER_PASSWORD": EDITOR_PASSWORD,
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _wait_until_up(process: subprocess.Popen, url: str, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"runserver exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                if client.get(f"{url}/admin/login/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"runserver did not answer within {timeout}s:\n{log_path.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def auction_server(tmp_path_factory) -> Server:
    """``runserver`` on a fresh SQLite database with one superuser, the editor."""
    var_dir = tmp_path_factory.mktemp("auction-var")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _server_env(var_dir, url)
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "createsuperuser", "--noinput", "--username", EDITOR_USERNAME, "--email", "editor@example.com")
    log_path = var_dir / "runserver.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, url, log_path)
        yield Server(url=url, username=EDITOR_USERNAME, password=EDITOR_PASSWORD, log_path=log_path)
    finally:
        terminate(process)


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, browser, auction_server):
    """A fresh browser context; its last view is kept as a screenshot, pass or fail."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    context.set_default_timeout(15_000)
    context.set_default_navigation_timeout(20_000)
    page = context.new_page()
    try:
        yield page
    finally:
        try:
            page.screenshot(path=str(FINAL_SCREENSHOT), full_page=True)
        except Exception as error:  # the screenshot only helps debugging; never mask the real failure
            print(f"screenshot failed: {error}")
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"final page: {page.url}\nscreenshot: {FINAL_SCREENSHOT}")
            print(f"--- runserver log (tail) ---\n{auction_server.log_tail()}")
        context.close()


@pytest.fixture(autouse=True)
def clear_cache():
    """Overrides tests/conftest.py's: the server has its own cache, this process's is never used."""
    yield
