"""The clients of the multi-process proof (tests/test_multiprocess.py): the
processes it started and how long each step took, the API over nginx or one
master (an answer lost to a killed process is asked again with the same
Idempotency-Key), a bidding war, watchers that come back through nginx."""

import re
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from django.db import connection
from django_q.models import Task

from tests.bidding_war import BidderThreads
from tests.live_stack import Watcher
from tests.servers import S3Server, closed_port, wait_until
from tests.stack import (
    SHIPPED_NGINX_CONF,
    Nginx,
    Proc,
    answers,
    free_port,
    nginx_site_for_test,
    process_environment,
    spawn_gunicorn,
    spawn_runjobs,
    spawn_uvicorn,
    tails,
    wait_for_processes,
)

WAIT_SECONDS = 45
RETRIED = {502, 503, 504}


class Journey:
    """The processes, the clients, and how long each step took."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.var_dir = tmp_path / "var"
        self.procs: dict[str, Proc] = {}
        self.nginx: Nginx | None = None
        self.s3: S3Server | None = None
        self.connections = None  # a ConnectionPeak, stopped with the rest
        self.watchers: list[Watcher] = []
        self.started = time.monotonic()
        self.last = self.started
        self.timings: list[tuple[str, float]] = []
        self.web_urls: list[str] = []
        self.live_urls: list[str] = []

    def phase(self, name: str) -> None:
        now = time.monotonic()
        self.timings.append((name, now - self.last))
        self.last = now

    def report(self) -> str:
        lines = [f"  {name:<52} {seconds:6.1f}s" for name, seconds in self.timings]
        return "\n".join(["multi-process journey:", *lines, f"  {'total':<52} {time.monotonic() - self.started:6.1f}s"])

    def alive(self) -> list[Proc]:
        return [proc for proc in self.procs.values() if proc.is_alive()]

    def wait(self, what: str, probe, timeout: float = WAIT_SECONDS):
        try:
            return wait_until(what, probe, timeout=timeout, interval=0.2)
        except AssertionError as error:
            pytest.fail(f"{error}\n{tails(list(self.procs.values()))}")

    def stop(self) -> None:
        if self.connections is not None:
            self.connections.stop()
        for watcher in self.watchers:
            try:
                watcher.close()
            except Exception:  # noqa: BLE001  (already gone)
                pass
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        if self.nginx is not None:
            self.nginx.stop()
        if self.s3 is not None:
            self.s3.stop()


# --- the processes of one journey ---------------------------------------------------------------------------------------


def media_environment(journey: Journey, *, on_s3: bool, bucket: str) -> dict[str, str]:
    """Media on object storage: a moto server of ours (tests/servers.py) and the settings that point every process at it."""
    if not on_s3:
        return {}
    import json

    journey.s3 = S3Server(journey.tmp_path)
    journey.s3.start()
    s3 = journey.s3.client()
    s3.create_bucket(Bucket=bucket)
    # The bucket's own address stands in for the CDN, which reads it anonymously.
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    return {
        "AUCTION_MEDIA_STORAGE": "s3",
        "AUCTION_S3_BUCKET": bucket,
        "AUCTION_S3_ENDPOINT_URL": journey.s3.url,
        "AUCTION_S3_ACCESS_KEY": S3Server.ACCESS_KEY,
        "AUCTION_S3_SECRET_KEY": S3Server.SECRET_KEY,
        "AUCTION_S3_REGION": S3Server.REGION,
        "AUCTION_MEDIA_BASE_URL": f"{journey.s3.url}/{bucket}/",
    }


def start(journey: Journey, *, pay_window_seconds: int, media: dict[str, str]) -> dict[str, str]:
    """Two gunicorn masters, two uvicorn, two clusters and nginx with both of each in its upstreams."""
    run = f"multi-{uuid.uuid4().hex[:10]}"
    env = process_environment(
        journey.var_dir,
        run=run,
        AUCTION_PAYMENT_WINDOW_SECONDS=str(pay_window_seconds),
        # nginx in front sets X-Forwarded-For: the limits and the lockout read the client there.
        AUCTION_NUM_PROXIES="1",
        # The watchers wait out the lots' minute to the hammer without a word: not idle-closed meanwhile.
        LIVE_IDLE_SECONDS="600",
        # An hour's window: the count cannot roll over between the requests that fill it.
        AUCTION_THROTTLE_QUOTE="4/h",
        LIVE_CHANNEL_PREFIX=f"{run}:live",
        LOG_LEVEL="WARNING",
        **media,
    )
    web_ports, live_ports = [free_port(), free_port()], [free_port(), free_port()]
    for index, port in enumerate(web_ports, 1):
        journey.procs[f"web{index}"] = spawn_gunicorn(f"web{index}", env, journey.tmp_path, port=port)
    for index, port in enumerate(live_ports, 1):
        journey.procs[f"live{index}"] = spawn_uvicorn(f"live{index}", env, journey.tmp_path, port=port)
    for index in (1, 2):
        journey.procs[f"jobs{index}"] = spawn_runjobs(f"jobs{index}", env, journey.tmp_path)
    journey.web_urls = [f"http://127.0.0.1:{port}" for port in web_ports]
    journey.live_urls = [f"http://127.0.0.1:{port}" for port in live_ports]
    nginx_port = free_port()
    site = nginx_site_for_test(
        SHIPPED_NGINX_CONF.read_text(), port=nginx_port, redirect_port=closed_port(), var_dir=journey.var_dir,
        web=[f"127.0.0.1:{port}" for port in web_ports], live=[f"127.0.0.1:{port}" for port in live_ports],
    )
    # Clients here reach nginx as 127.0.0.1 (and Django allows that host).
    site = site.replace("server_name auction.example.com;", "server_name auction.example.com 127.0.0.1;")
    access_log = "log_format upstreams '$request_method $uri $status $upstream_addr'; " \
                 f"access_log {journey.tmp_path / 'access.log'} upstreams;"
    folder = journey.tmp_path / "nginx"
    folder.mkdir()
    journey.nginx = Nginx(folder, site, port=nginx_port, access_log=access_log)
    procs = list(journey.procs.values())
    for url in journey.web_urls:
        wait_for_processes(f"{url} answering", lambda url=url: answers(f"{url}/api/v1/specials", times=4), procs)
    for url in journey.live_urls:
        wait_for_processes(f"{url} answering", lambda url=url: answers(f"{url}/ws/health"), procs)
    first_sweep = Task.objects.filter(func="jobs.tasks.sweep", success=True)
    wait_for_processes("the job clusters' first sweep", first_sweep.exists, procs)
    return env


class ConnectionPeak:
    """The most connections the test database had at once (every process's and
    this test's), sampled every 0.2 s by a thread on a connection of its own."""

    def __init__(self):
        self.peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        try:
            while not self.stopping.wait(0.2):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s",
                                   [connection.settings_dict["NAME"]])
                    self.peak = max(self.peak, cursor.fetchone()[0])
        finally:
            connection.close()

    def stop(self) -> int:
        self.stopping.set()
        self.thread.join(timeout=10)
        return self.peak


# --- HTTP ------------------------------------------------------------------------------------------------


class Api:
    """/api/v1 on one base URL (nginx or one master), with a token; every call
    carries a fresh Idempotency-Key and is sent again with the same key when
    the answer was lost (a master killed under it: nginx's 502, or a dropped
    connection)."""

    def __init__(self, base: str, token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=f"{base}/api/v1", headers=headers, trust_env=False, timeout=15)
        self.token = token
        self.retries = 0

    def call(self, method: str, path: str, json: dict | None = None, *, key: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        for _ in range(8):
            try:
                response = self.client.request(method, path, json=json, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code not in RETRIED:
                return response
            self.retries += 1
            time.sleep(0.3)
        pytest.fail(f"{method} {path}: no answer after 8 tries")

    def get(self, path: str) -> httpx.Response:
        return self.call("GET", path)

    def post(self, path: str, json: dict | None = None, **kwargs) -> httpx.Response:
        return self.call("POST", path, json if json is not None else {}, **kwargs)

    def close(self) -> None:
        self.client.close()


def login(base: str, nickname: str) -> Api:
    answer = Api(base).post("/auth/sandbox", {"openid": f"multi-{uuid.uuid4().hex}", "nickname": nickname})
    assert answer.status_code == 200, answer.text
    return Api(base, answer.json()["token"])


def pay_deposit(api: Api, lot_id: int) -> dict:
    created = api.post("/deposits", {"lot_id": lot_id})
    assert created.status_code == 201, created.text
    paid = api.post(f"/payments/sandbox/{created.json()['payment']['out_trade_no']}/succeed")
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text
    return created.json()["deposit"]


def deposit_status(api: Api, deposit_id: int) -> str:
    return next(item["status"] for item in api.get("/deposits").json()["items"] if item["id"] == deposit_id)


# --- the admin, the war, the watchers -----------------------------------------------------------------------


def admin_login(browser: httpx.Client, base: str, username: str, password: str) -> httpx.Response:
    form = browser.get(f"{base}/admin/login/")
    assert form.status_code == 200, form.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    return browser.post(f"{base}/admin/login/",
                        data={"username": username, "password": password, "csrfmiddlewaretoken": token})


class War(BidderThreads):
    """Bidders on one lot through nginx, each at the lowest price the last answer
    allowed, a bid every 0.4 s (under the per-user limit); every keyed attempt and
    its final answer recorded."""

    join_seconds = 60

    def __init__(self, base: str, lot_id: int, bidders: list[Api], start_price: int):
        self.base, self.bidders = base, bidders
        super().__init__(lot_id, bidders, start_price)
        self.answers: list[tuple[str, int, dict]] = []  # (key, status, body)

    def bid(self, api: Api) -> None:
        for _ in range(200):  # bounded
            if self.stopping.is_set():
                return
            key, price = uuid.uuid4().hex, self.next_price
            response = api.post(f"/lots/{self.lot_id}/bids", {"price": price}, key=key)
            body = response.json()
            with self.lock:
                # Checked after the war (an assert in a thread would only print).
                self.answers.append((key, response.status_code, body))
                if response.status_code == 201:
                    self.next_price = max(self.next_price, body["lot"]["next_min_bid"])
                elif body.get("code") == "bid_too_low":
                    self.next_price = max(self.next_price, body["detail"]["next_min_bid"])
            time.sleep(0.4)

    def accepted(self) -> dict[str, tuple[int, int]]:
        """Idempotency key → (bid id, price) of every 201."""
        return {key: (body["bid"]["id"], body["bid"]["price"]) for key, status, body in self.answers if status == 201}


def lot_messages(watcher: Watcher, lot_id: int) -> list[dict]:
    return [m for m in watcher.messages if m["type"] == "lot" and m["lot"]["id"] == lot_id]


def watching(journey: Journey, name: str, url: str, lot_ids: list[int], token: str | None = None) -> Watcher:
    watcher = Watcher(name=name, url=url.replace("http://", "ws://") + "/ws/v1/live", token=token)
    journey.watchers.append(watcher)
    watcher.send(op="watch", lot_ids=lot_ids)
    watcher.wait_for("its snapshots", lambda m: len(watcher.of_type("snapshot")) == len(lot_ids))
    return watcher


def still_watching(journey: Journey, watcher: Watcher, lot_ids: list[int]) -> Watcher:
    """A socket its process took down with it comes back through nginx, to the survivor."""
    watcher.pump(0.3)
    if not watcher.closed:
        watcher.send(op="ping")  # heard from: the server's idle close (LIVE_IDLE_SECONDS) starts again
        return watcher
    return watching(journey, f"{watcher.name} again", journey.nginx.url, lot_ids, token=None)


def bids_by_master(journey: Journey, lot_id: int) -> Counter:
    """Which master nginx gave each bid it answered (a retried one names both)."""
    ports = {url.rsplit(":", 1)[1]: f"web{index}" for index, url in enumerate(journey.web_urls, 1)}
    served: Counter = Counter()
    for line in (journey.tmp_path / "access.log").read_text().splitlines():
        method, uri, status, upstream = line.split(" ", 3)
        if method == "POST" and uri == f"/api/v1/lots/{lot_id}/bids" and status in ("201", "409"):
            served[ports.get(upstream.rsplit(":", 1)[-1], upstream)] += 1
    return served
