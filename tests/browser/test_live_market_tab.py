"""An editor keeps a lot's Market tab open in headless Chromium: a bid made over HTTP
and a phone starting to watch show up on it without a reload.

The server is ``uvicorn project.asgi`` as ``make run`` starts it (admin, API and
the live socket from one process, on a throwaway SQLite database), so the page's
script (served from static, no CDN) reaches ``/ws/v1/live`` on its own host.
"""

import json
import subprocess
import sys
import time

import httpx
import pytest
from websockets.sync.client import connect

from tests.browser.conftest import (
    BASE_DIR,
    EDITOR_PASSWORD,
    EDITOR_USERNAME,
    Server,
    _free_port,
    _manage,
    _server_env,
    _wait_until_up,
)
from tests.browser.test_editor_publishes import log_in
from tests.browser.test_ops_back_office import local_only
from tests.servers import terminate

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

SEED = """
import json
from datetime import timedelta
from django.utils import timezone
from auction.models import Lot
from tests.pages import lot_page, special_page
now = timezone.now()
special = special_page(title="实时专场", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=3))
page = lot_page(special, title="实时拍品", start_price=100_000, deposit=0)
print(json.dumps({"page_id": page.pk, "lot_id": Lot.objects.get(page_id=page.pk).pk}))
"""


@pytest.fixture(scope="module")
def auction_server(tmp_path_factory):
    """Overrides conftest's runserver: the ASGI server, which also serves the socket."""
    var_dir = tmp_path_factory.mktemp("live-var")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in _server_env(var_dir, url).items()
           if key not in ("REDIS_CACHE_URL", "LIVE_REDIS_URL")}
    env.update({"AUCTION_SANDBOX": "1", "LIVE_WATCHERS_SECONDS": "0.5", "LIVE_POLL_SECONDS": "0.1"})
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(env, "createsuperuser", "--noinput", "--username", EDITOR_USERNAME, "--email", "editor@example.com")
    log_path = var_dir / "uvicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off"],
            cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, url, log_path, timeout=60)
        yield Server(url=url, username=EDITOR_USERNAME, password=EDITOR_PASSWORD, log_path=log_path)
    finally:
        terminate(process)


@pytest.fixture(scope="module")
def live_lot(auction_server):
    env = _server_env(auction_server.log_path.parent, auction_server.url)
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_market_tab_shows_a_bid_and_a_new_watcher_without_a_reload(page, auction_server, live_lot):
    refused, requested = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.route("**/*", local_only(refused))
    # given an editor on the lot's Market tab, its socket open
    log_in(page, auction_server)
    page.goto(f"{auction_server.url}/admin/pages/{live_lot['page_id']}/edit/")
    page.locator('[role="tab"][href="#tab-market"]').click()
    panel = page.locator('[data-market-panel="lot"]')
    expect(panel).to_have_attribute("data-live-state", "open")
    field = lambda name: panel.locator(f'[data-live-field="{name}"]')  # noqa: E731
    expect(field("watchers")).to_have_text("0")  # the editor's own socket is not counted
    expect(field("bid_count")).to_have_text("0")
    page.evaluate("window.__notReloaded = true")

    # when a phone starts watching the lot
    phone_url = auction_server.url.replace("http://", "ws://") + "/ws/v1/live"
    with connect(phone_url, open_timeout=15, proxy=None) as phone:
        phone.send(json.dumps({"op": "watch", "lot_ids": [live_lot["lot_id"]]}))
        assert json.loads(phone.recv(timeout=15))["type"] == "snapshot"
        # then the tab counts it
        expect(field("watchers")).to_have_text("1")

        # when a bidder bids 1,000 yuan over HTTP
        with httpx.Client(base_url=f"{auction_server.url}/api/v1", trust_env=False, timeout=15) as api:
            logged_in = api.post("/auth/sandbox", json={"openid": f"live-tab-{time.time_ns()}", "nickname": "阿甲"})
            assert logged_in.status_code == 200, logged_in.text
            token = logged_in.json()["token"]
            placed = api.post(f"/lots/{live_lot['lot_id']}/bids", json={"price": 100_000},
                              headers={"Authorization": f"Bearer {token}"})
            assert placed.status_code == 201, placed.text

        # then the tab shows the price, the bid count and the leader, on the same page
        expect(field("current_price")).to_have_text("¥1,000")
        expect(field("bid_count")).to_have_text("1")
        expect(field("leader")).to_have_text("阿**")
        expect(field("next_min_bid")).to_have_text(f"¥{placed.json()['lot']['next_min_bid'] // 100:,}")
    # and when the phone leaves, the count follows
    expect(field("watchers")).to_have_text("0")
    assert page.evaluate("window.__notReloaded") is True
    # the script came from this server's static files (Wagtail's own avatar and upgrade
    # check are the only requests to elsewhere, refused, and the tab works without them)
    assert f"{auction_server.url}/static/cms/live_market.js" in requested
    assert all("gravatar.com" in url or "wagtail.org" in url for url in refused), refused
