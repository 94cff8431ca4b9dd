"""Publishing after commit: what a change announces, and that it never costs a bid.

In-process, on whichever database the suite runs; each test picks its
transport (the LiveChange log, or a Redis it starts itself).
"""

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest
import redis
from django.db import transaction

from auction.models import Bid, LiveChange
from auction.services.bidding import auto_bid_set, bid_place
from auction.services.live import live_publisher_flush, live_publisher_reset, redis_channel
from tests.factories import LotFactory, UserFactory
from tests.market import bid, bidder, hammer, pay_deposit

pytestmark = pytest.mark.django_db(transaction=True)



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def fresh_publisher(settings):
    settings.LIVE_CHANNEL_PREFIX = f"test-{uuid.uuid4().hex[:10]}"
    settings.LIVE_REDIS_URL = ""  # the change log unless a test says otherwise
    live_publisher_reset()
    yield
    live_publisher_reset()


def changes() -> list[tuple[str, dict]]:
    return list(LiveChange.objects.order_by("id").values_list("channel", "data"))


def bidder_with_deposit(client, lot, nickname):
    api = bidder(client, nickname)
    pay_deposit(api, lot_id=lot.pk)
    return api


def test_a_bid_announces_the_lot_after_commit_and_tells_the_bidder_it_outbid(client):
    # given B leads
    lot = LotFactory()
    a, b = bidder_with_deposit(client, lot, "阿甲"), bidder_with_deposit(client, lot, "贝乙")
    assert bid(b, lot.pk, 100_000).status_code == 201
    LiveChange.objects.all().delete()
    # when A outbids B
    assert bid(a, lot.pk, 110_000).status_code == 201
    # then the lot is announced with its new version, and B (only B) is told
    lot.refresh_from_db()
    announced = changes()
    assert announced[0][0] == f"lot:{lot.pk}" and announced[0][1]["version"] == lot.version
    assert announced[0][1]["committed_at"] > 0
    assert announced[1:] == [(f"user:{b.user.pk}", {"type": "outbid", "lot_id": lot.pk, "price": 110_000})]


def test_a_proxy_answer_outbids_the_bidder_in_the_same_announcement(client):
    lot = LotFactory()
    a, b = bidder_with_deposit(client, lot, "阿甲"), bidder_with_deposit(client, lot, "贝乙")
    auto_bid_set(lot_id=lot.pk, user=b.user, max_price=150_000)
    LiveChange.objects.all().delete()
    # when A bids and B's proxy answers at once
    assert bid(a, lot.pk, 110_000).json()["lot"]["current_price"] == 120_000
    # then one lot announcement, and A outbid at the answer's price; B, still leading, is not told
    channels = [channel for channel, _ in changes()]
    assert channels == [f"lot:{lot.pk}", f"user:{a.user.pk}"]
    assert changes()[1][1]["price"] == 120_000


def test_a_rolled_back_bid_announces_nothing(client):
    lot = LotFactory()
    a, b = bidder_with_deposit(client, lot, "阿甲"), bidder_with_deposit(client, lot, "贝乙")
    LiveChange.objects.all().delete()
    # when a plain bid is rolled back by the transaction around it
    with pytest.raises(RuntimeError), transaction.atomic():
        bid_place(lot_id=lot.pk, user=a.user, price=100_000)
        raise RuntimeError("the caller's transaction fails after the bid")
    # then nothing is announced
    assert changes() == [] and not Bid.objects.exists()
    # given A's proxy (it bids at once, and that is announced)
    auto_bid_set(lot_id=lot.pk, user=a.user, max_price=200_000)
    assert [channel for channel, _ in changes()] == [f"lot:{lot.pk}"]
    LiveChange.objects.all().delete()
    # when B's bid, answered by the proxy under the lot's lock, is rolled back
    with pytest.raises(RuntimeError), transaction.atomic():
        assert bid_place(lot_id=lot.pk, user=b.user, price=110_000).answers
        raise RuntimeError("the caller's transaction fails after the bid")
    # then neither the bid nor the answer, nor B outbid, is announced
    assert changes() == []
    assert list(Bid.objects.values_list("price", flat=True)) == [100_000]


def test_the_settlement_and_the_win_are_announced(client):
    from auction.services.settlement import lot_settle

    lot = LotFactory()
    a = bidder_with_deposit(client, lot, "阿甲")
    assert bid(a, lot.pk, 100_000).status_code == 201
    hammer(lot)
    LiveChange.objects.all().delete()
    order = lot_settle(lot_id=lot.pk)
    kinds = [(channel, data.get("type")) for channel, data in changes()]
    assert (f"lot:{lot.pk}", None) in kinds
    assert (f"user:{a.user.pk}", "won") in kinds and (f"user:{a.user.pk}", "order") in kinds
    won = next(data for channel, data in changes() if data.get("type") == "won")
    assert won == {"type": "won", "lot_id": lot.pk, "order_no": order.order_no}
    # the job once more: nothing settles, nothing is announced
    LiveChange.objects.all().delete()
    assert lot_settle(lot_id=lot.pk) is None and changes() == []


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own, on its own port: the test kills it."""
    server = shutil.which("redis-server")
    if server is None:
        if not os.environ.get("REDIS_URL"):
            pytest.skip("the embedded default needs no Redis and none is installed; make services-test runs this")
        pytest.fail("REDIS_URL is set but redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("own redis-server did not start")
            time.sleep(0.05)
    yield process, client, port
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    client.close()


def test_bids_announce_through_redis_and_a_dead_redis_never_fails_a_bid(client, settings, own_redis, caplog):
    process, watcher, port = own_redis
    settings.LIVE_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    lot = LotFactory()
    a, b = bidder_with_deposit(client, lot, "阿甲"), bidder_with_deposit(client, lot, "贝乙")
    subscription = watcher.pubsub(ignore_subscribe_messages=True)
    subscription.subscribe(redis_channel(f"lot:{lot.pk}"))
    # given Redis up: a bid reaches a subscriber
    assert bid(a, lot.pk, 100_000).status_code == 201
    message = None
    deadline = time.monotonic() + 5
    while message is None and time.monotonic() < deadline:
        message = subscription.get_message(timeout=1)
    assert json.loads(message["data"])["lot_id"] == lot.pk
    subscription.close()
    # when Redis dies: bids are still accepted, and the failure is logged
    process.kill()
    process.wait(timeout=10)
    with caplog.at_level(logging.ERROR, logger="auction.services.live"):
        started = time.monotonic()
        assert bid(b, lot.pk, 110_000).status_code == 201
        assert bid(a, lot.pk, 120_000).status_code == 201
        elapsed = time.monotonic() - started
        assert live_publisher_flush()
    assert "publishing" in caplog.text
    assert Bid.objects.filter(lot=lot).count() == 3
    assert elapsed < 5, elapsed  # two bids on a busy box; no retry loop, no long timeout


def test_a_redis_with_a_password_is_logged_into_and_a_wrong_one_never_fails_a_bid(client, settings, own_redis, caplog):
    process, watcher, port = own_redis
    watcher.config_set("requirepass", "秘密 pass")
    watcher = redis.Redis(port=port, password="秘密 pass", socket_timeout=2)
    lot = LotFactory()
    a, b = bidder_with_deposit(client, lot, "阿甲"), bidder_with_deposit(client, lot, "贝乙")
    subscription = watcher.pubsub(ignore_subscribe_messages=True)
    subscription.subscribe(redis_channel(f"lot:{lot.pk}"))
    # given the password in the URL (quoted, as a URL carries it): a bid reaches a subscriber
    settings.LIVE_REDIS_URL = f"redis://:%E7%A7%98%E5%AF%86%20pass@127.0.0.1:{port}/0"
    assert bid(a, lot.pk, 100_000).status_code == 201
    assert live_publisher_flush()
    message = None
    deadline = time.monotonic() + 5
    while message is None and time.monotonic() < deadline:
        message = subscription.get_message(timeout=1)
    assert json.loads(message["data"])["lot_id"] == lot.pk
    # when the password is wrong: the bid is still accepted, and the refusal is logged
    live_publisher_reset()
    settings.LIVE_REDIS_URL = f"redis://:wrong@127.0.0.1:{port}/0"
    with caplog.at_level(logging.ERROR, logger="auction.services.live"):
        assert bid(b, lot.pk, 110_000).status_code == 201
        assert live_publisher_flush()
    assert "refused the login" in caplog.text
    assert subscription.get_message(timeout=1) is None
    subscription.close()


def test_a_hung_redis_never_slows_a_bid(client, settings, caplog):
    # given a "Redis" that accepts connections and never answers
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    hung_port = listener.getsockname()[1]
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.LIVE_REDIS_URL = f"redis://127.0.0.1:{hung_port}/0"
    settings.LIVE_PUBLISH_RETRY_SECONDS = 30
    lot = LotFactory()
    users = [UserFactory() for _ in range(3)]
    for user in users:
        pay_deposit(bidder_for(client, user), lot_id=lot.pk)
    try:
        with caplog.at_level(logging.ERROR, logger="auction.services.live"):
            # when three bids land while it hangs
            timings = []
            for user, price in zip(users, (100_000, 110_000, 120_000), strict=True):
                started = time.monotonic()
                bid_place(lot_id=lot.pk, user=user, price=price)
                timings.append(time.monotonic() - started)
            assert live_publisher_flush()
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()
    # then all are accepted without waiting for Redis (the publisher's thread waits, once,
    # for one publish timeout, 50 ms): the next announcements, inside the retry window,
    # never asked it again
    assert Bid.objects.filter(lot=lot).count() == 3
    assert "publishing" in caplog.text
    assert len(accepted) == 1, "Redis was asked again inside its retry window"
    assert max(timings) < 1, timings


def bidder_for(client, user):
    from auction.services.tokens import token_issue
    from tests.conftest import ApiClient

    return ApiClient(client, token=token_issue(user=user))
