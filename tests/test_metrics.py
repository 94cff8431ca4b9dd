"""Prometheus metrics (project/metrics.py): what a bid, a refusal and any answer
count, who may read ``/metrics``, the jobs' gauges read at scrape time, the
socket count from the ASGI process (``/ws/metrics``), and gunicorn's workers
summed through ``PROMETHEUS_MULTIPROC_DIR`` (deploy/gunicorn.conf.py)."""

import glob
import importlib.util
import os
import signal
import sys
import time
import uuid

import httpx
import pytest
from django.conf import settings
from django.urls import resolve
from django.utils import timezone
from django_q.models import Failure
from django_q.tasks import async_task
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from auction.models import Bid
from jobs.health import broker
from project.metrics import BID_ROUTE, UNMATCHED
from tests.factories import LotFactory
from tests.market import bid, bidder, pay_deposit
from tests.servers import PORT_BASE, port_is_open, wait_until
from tests.stack import answers, wait_for_processes
from tests.test_e2e_cluster import ENV_DROPPED, _spawn, _test_database_url

REQUESTS = "auction_http_requests_total"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_bid_route_label_is_the_urlconfs_pattern():
    assert resolve("/api/v1/lots/7/bids").route == BID_ROUTE


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return samples(response.content.decode())


def grown(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.mark.django_db
def test_a_bid_is_counted_by_route_status_and_outcome_on_both_routes(client, django_capture_on_commit_callbacks):
    # given: a lot and a bidder with a held deposit
    lot = LotFactory(start_price=100_000, deposit=50_000)
    alice, bob = bidder(client, "爱丽丝"), bidder(client, "鲍勃")
    pay_deposit(alice, lot_id=lot.pk)
    pay_deposit(bob, lot_id=lot.pk)
    accepted, created = value("auction_bids_accepted_total", kind="plain"), value(REQUESTS, route=BID_ROUTE, method="POST", status="201")
    too_low = value("auction_bids_refused_total", code="bid_too_low")
    timed = value("auction_bid_seconds_count")
    # when: a bid on the direct route, one on the full route (a body too long for the direct one), one refused
    with django_capture_on_commit_callbacks(execute=True):  # accepted bids are counted once they commit
        assert bid(alice, lot.pk, 100_000).status_code == 201
        padded = b'{"price": 110000' + b" " * 300 + b"}"
        assert bob.client.post(f"/api/v1/lots/{lot.pk}/bids", padded, content_type="application/json",
                               headers={"Authorization": f"Bearer {bob.token}"}).status_code == 201
        refused = bid(alice, lot.pk, 110_001)  # below Bob's 110,000 and a step
    # then
    assert refused.status_code == 409 and refused.json()["code"] == "bid_too_low"
    assert value("auction_bids_accepted_total", kind="plain") == accepted + 2
    assert value(REQUESTS, route=BID_ROUTE, method="POST", status="201") == created + 2
    assert value("auction_bids_refused_total", code="bid_too_low") == too_low + 1
    assert value(REQUESTS, route=BID_ROUTE, method="POST", status="409") >= 1
    assert value("auction_bid_seconds_count") == timed + 3
    assert value("auction_bid_seconds_sum") > 0


@pytest.mark.django_db
def test_a_replayed_bid_is_counted_under_the_bid_route_as_a_replay_and_not_as_a_bid_again(client, django_capture_on_commit_callbacks):
    # given: a bidder with a held deposit
    lot = LotFactory(start_price=100_000, deposit=50_000)
    alice = bidder(client, "爱丽丝")
    pay_deposit(alice, lot_id=lot.pk)
    before = scrape(client)
    # when: a bid sent twice with one Idempotency-Key (the first answer lost, say), and a key the middleware refuses
    with django_capture_on_commit_callbacks(execute=True):
        first = alice.post(f"/lots/{lot.pk}/bids", {"price": 100_000}, headers={"Idempotency-Key": "bid-1"})
        again = alice.post(f"/lots/{lot.pk}/bids", {"price": 100_000}, headers={"Idempotency-Key": "bid-1"})
        badly_keyed = alice.post(f"/lots/{lot.pk}/bids", {"price": 110_000}, headers={"Idempotency-Key": "not a key"})
    after = scrape(client)
    # then: two answers on the bid's route, one of them a replay, and one bid accepted
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert badly_keyed.status_code == 422
    assert grown(before, after, REQUESTS, route=BID_ROUTE, method="POST", status="201") == 2
    assert grown(before, after, "auction_idempotent_replays_total", route=BID_ROUTE) == 1
    assert grown(before, after, "auction_bids_accepted_total", kind="plain") == 1
    assert grown(before, after, "auction_bid_seconds_count") == 3
    # and none of them is taken for a path no pattern takes
    assert grown(before, after, REQUESTS, route=BID_ROUTE, method="POST", status="422") == 1
    # (other tests of the run may have counted unmatched POSTs before: what grew here is what counts)
    assert not [key for key, count in after.items() if key[0] == REQUESTS and ("route", UNMATCHED) in key[1]
                and ("method", "POST") in key[1] and count > before.get(key, 0.0)]


@pytest.mark.django_db
def test_proxy_answers_are_counted_as_accepted_bids_of_their_own_kind(client, django_capture_on_commit_callbacks):
    # given: two bidders with held deposits
    lot = LotFactory(start_price=100_000, deposit=50_000, increment=10_000)
    alice, bob = bidder(client, "爱丽丝"), bidder(client, "鲍勃")
    pay_deposit(alice, lot_id=lot.pk)
    pay_deposit(bob, lot_id=lot.pk)
    before = scrape(client)
    # when: Alice sets a proxy (it bids at once, no one leading), then Bob bids and her proxy answers him
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 200_000}).status_code == 200
        answered = bid(bob, lot.pk, 110_000)
    after = scrape(client)
    # then: Bob's bid is a plain one, and both of the proxy's bids are accepted bids too
    assert answered.status_code == 201
    assert list(Bid.objects.filter(lot=lot).order_by("id").values_list("user_id", "price", "is_auto")) == [
        (alice.user.pk, 100_000, True), (bob.user.pk, 110_000, False), (alice.user.pk, 120_000, True),
    ]
    assert grown(before, after, "auction_bids_accepted_total", kind="plain") == 1
    assert grown(before, after, "auction_bids_accepted_total", kind="proxy") == 2
    assert grown(before, after, REQUESTS, route=BID_ROUTE, method="POST", status="201") == 1


def test_a_path_no_pattern_takes_is_counted_as_unmatched(client):
    before = value(REQUESTS, route=UNMATCHED, method="GET", status="404")
    client.get(f"/api/v1/{uuid.uuid4().hex}")
    assert value(REQUESTS, route=UNMATCHED, method="GET", status="404") == before + 1
    healthz = value(REQUESTS, route="healthz", method="GET", status="200")
    client.get("/healthz")
    assert value(REQUESTS, route="healthz", method="GET", status="200") == healthz + 1


@pytest.mark.django_db
def test_metrics_answer_loopback_and_the_token_and_nobody_else(client, settings):
    # the embedded default: from this machine
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert "auction_http_requests_total" in response.content.decode()
    # another address, no token
    settings.AUCTION_METRICS_ALLOW_IPS = ["10.1.0.0/16", "not an address"]
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    # behind nginx (one proxy), the client is the address nginx saw, not the socket's
    settings.AUCTION_NUM_PROXIES = 1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="192.0.2.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.9.9").status_code == 200
    # a token lets any address in, a wrong one does not
    settings.AUCTION_METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="192.0.2.9", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="192.0.2.9", HTTP_AUTHORIZATION="Bearer guess").status_code == 403


@pytest.mark.django_db
def test_the_jobs_queue_and_failures_are_read_at_scrape_time(client):
    # given: a task waiting in the broker, and a failure kept
    before = samples(client.get("/metrics").content.decode())
    async_task("math.floor", 1.5)
    Failure.objects.create(id=uuid.uuid4().hex, name="failed-one", func="jobs.tasks.sweep", started=timezone.now(),
                           stopped=timezone.now(), success=False, result="boom")
    try:
        # when
        after = samples(client.get("/metrics").content.decode())
    finally:
        if settings.REDIS_URL:
            broker().connection.delete(broker().list_key)
    # then
    assert after[("auction_jobs_queued", ())] == before[("auction_jobs_queued", ())] + 1
    assert after[("auction_jobs_failed", ())] == before[("auction_jobs_failed", ())] + 1
    assert after[("auction_jobs_cluster_up", ())] in (0, 1) and ("auction_jobs_clusters", ()) in after


# --- real processes -------------------------------------------------------------------------------------

_PORTS = iter(range(PORT_BASE + 140, PORT_BASE + 180))


def _environment(tmp_path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ENV_DROPPED and key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "DATABASE_URL": _test_database_url(), "DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_DEBUG": "1",
        "AUCTION_VAR_DIR": str(tmp_path / "var"), "Q_CLUSTER_NAME": f"metrics-{uuid.uuid4().hex[:8]}",
        "CACHE_KEY_PREFIX": f"metrics-{uuid.uuid4().hex[:8]}", "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    })
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    return env


@pytest.mark.django_db(transaction=True)
def test_the_asgi_process_reports_its_open_sockets(tmp_path):
    # given: the socket server (uvicorn, project.asgi)
    port = next(_PORTS)
    assert not port_is_open(port)
    args = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
    proc = _spawn(f"live-{port}", args, _environment(tmp_path, LIVE_CLIENT_IP_HEADER="x-real-ip"), tmp_path, signal.SIGINT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_processes(f"{proc.name} answering", lambda: answers(f"{url}/healthz"), [proc])

        def open_sockets() -> float:
            text = httpx.get(f"{url}/ws/metrics", trust_env=False, timeout=5).text
            return samples(text).get(("auction_websocket_connections", ()), -1)

        assert open_sockets() == 0
        # when: two watchers connect
        sockets = [connect(f"ws://127.0.0.1:{port}/ws/v1/live", open_timeout=15, proxy=None, legacy=True) for _ in range(2)]
        try:
            # then
            wait_until("two sockets counted", lambda: open_sockets() == 2, timeout=10)
        finally:
            for socket in sockets:
                socket.close()
        wait_until("none counted once they closed", lambda: open_sockets() == 0, timeout=10)
        # and the same allowlist guards it, the client taken as the consumer takes it (nginx's X-Real-IP)
        assert httpx.get(f"{url}/ws/metrics", trust_env=False, timeout=5, headers={"X-Real-IP": "192.0.2.1"}).status_code == 403
    finally:
        proc.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None, reason="gunicorn is production's (requirements/prod.txt, services.txt)")
def test_gunicorn_workers_are_summed_by_any_of_them(tmp_path):
    # given: gunicorn as deployed (deploy/gunicorn.conf.py), two workers, the metrics directory it empties at start
    port = next(_PORTS)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left by an earlier run")
    env = _environment(tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(directory))
    args = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--no-control-socket", "project.wsgi"]
    proc = _spawn(f"gunicorn-{port}", args, env, tmp_path, signal.SIGINT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_processes(f"{proc.name} answering", lambda: answers(f"{url}/healthz"), [proc])
        assert not (directory / "counter_999999.db").exists()
        # when: many probes, each on a connection of its own, so both workers take some
        for _ in range(60):
            assert httpx.get(f"{url}/healthz", trust_env=False, timeout=5).status_code == 200
        # then: every scrape, whichever worker answers it, counts them all
        files = glob.glob(str(directory / "counter_*.db"))
        assert len(files) >= 2, files  # both workers counted some
        for _ in range(4):
            found = samples(httpx.get(f"{url}/metrics", trust_env=False, timeout=10).text)
            healthz = found[(REQUESTS, (("method", "GET"), ("route", "healthz"), ("status", "200")))]
            assert healthz >= 60 + 1  # the startup probes too
        total_before_kill = healthz
        # and a worker killed keeps what it counted (its file stays), the new one adds to it
        worker_pids = {int(os.path.basename(path).split("_")[1].split(".")[0]) for path in files}
        os.kill(next(iter(worker_pids)), signal.SIGKILL)
        time.sleep(1)
        wait_until("a worker again", lambda: _healthz_count(url) is not None, timeout=30)
        assert _healthz_count(url) >= total_before_kill
    finally:
        proc.stop()


def _healthz_count(url: str) -> float | None:
    try:
        found = samples(httpx.get(f"{url}/metrics", trust_env=False, timeout=10).text)
    except httpx.TransportError:
        return None
    return found.get((REQUESTS, (("method", "GET"), ("route", "healthz"), ("status", "200"))))
