"""Request limits: per user on what writes, per client IP (from our proxy only) on
logins and anonymous reads, counted in the shared cache; 429 ``throttled``."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import RequestFactory

from api import throttling
from api.bid_route import BidRouteMiddleware
from project.client_ip import client_ip
from tests.conftest import assert_error
from tests.factories import LotFactory
from tests.market import bid, bidder, pay_deposit

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(throttling, "clock", fake)
    return fake


@pytest.fixture
def served_directly(monkeypatch):
    count = []
    original = BidRouteMiddleware.bid

    def counting(self, request, **kwargs):
        count.append(request.path)
        return original(self, request, **kwargs)

    monkeypatch.setattr(BidRouteMiddleware, "bid", counting)
    return count


def assert_throttled(response) -> int:
    body = assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1 and body["detail"]["retry_after"] == retry_after
    return retry_after


@pytest.mark.django_db
def test_a_bidding_war_at_human_speed_is_never_throttled(client, clock, served_directly, settings):
    # given two bidders with deposits, each bidding once a second for two minutes
    assert settings.AUCTION_THROTTLE_BID == "30/10s"
    lot = LotFactory(start_price=100_000, deposit=50_000)
    a, b = bidder(client, "甲"), bidder(client, "乙")
    for each in (a, b):
        pay_deposit(each, lot_id=lot.pk)
    price = 100_000
    for second in range(120):
        for each in (a, b):
            response = bid(each, lot.pk, price)
            # then every bid is accepted, none throttled
            assert response.status_code == 201, (second, response.content)
            price = response.json()["lot"]["next_min_bid"]
        clock.advance(1.0)
    assert len(served_directly) == 240


@pytest.mark.django_db
def test_a_script_at_300_a_second_is_throttled_on_both_routes(client, clock, served_directly):
    lot = LotFactory(start_price=100_000, deposit=50_000)
    script, person = bidder(client), bidder(client)
    for each in (script, person):
        pay_deposit(each, lot_id=lot.pk)
    # when a script sends 300 bids in one second
    statuses = []
    for index in range(300):
        statuses.append(bid(script, lot.pk, 100_000 + index * 10_000))
        clock.advance(1 / 300)
    # then the first 30 are judged (one accepted, the rest already_leading) and the rest refused
    assert [response.status_code for response in statuses[:30]] == [201] + [409] * 29
    assert all(assert_throttled(response) <= 10 for response in statuses[30:])
    assert len(served_directly) == 300
    # and Ninja's own route counts with the direct one (a body only Ninja takes)
    assert_throttled(script.post(f"/lots/{lot.pk}/bids", {"price": "2000000"}))
    assert len(served_directly) == 300
    # another bidder is not slowed by it
    assert bid(person, lot.pk, 5_000_000).status_code == 201
    # and once the window passes, the script may bid again
    clock.advance(10)
    assert bid(script, lot.pk, 6_000_000).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("method, path", [
    ("put", "/lots/{lot}/auto-bid"),
    ("delete", "/lots/{lot}/auto-bid"),
    ("post", "/deposits"),
    ("post", "/coupons/999999/claim"),
    ("post", "/orders/20260101NOSUCHORDER0/pay"),
    ("post", "/orders/20260101NOSUCHORDER0/quote"),
])
def test_each_money_path_is_limited_per_user(client, clock, settings, method, path):
    for name in ("AUTO_BID", "DEPOSIT", "COUPON_CLAIM", "PAY", "QUOTE"):
        setattr(settings, f"AUCTION_THROTTLE_{name}", "3/m")
    lot = LotFactory()
    first, second = bidder(client), bidder(client)
    path = path.format(lot=lot.pk)

    def send(api):
        return getattr(api, method)(path, {}) if method != "delete" else api.delete(path)

    answers = [send(first) for _ in range(3)]
    assert all(response.status_code not in (429, 500) for response in answers), [r.content for r in answers]
    assert_throttled(send(first))
    assert send(second).status_code != 429
    clock.advance(60)
    assert send(first).status_code != 429


@pytest.mark.django_db
def test_limits_are_set_in_settings_and_an_empty_one_is_no_limit(client, clock, settings):
    settings.AUCTION_THROTTLE_QUOTE = ""
    api = bidder(client)
    assert all(api.post("/orders/20260101NOSUCHORDER0/quote", {}).status_code == 404 for _ in range(100))


@pytest.mark.parametrize("rate, parsed", [("30/10s", (30, 10)), ("300/m", (300, 60)), ("5/2h", (5, 7200)), ("1/d", (1, 86400))])
def test_rates_read_as_requests_per_window(rate, parsed):
    assert throttling.parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["30", "0/m", "30/0s", "30/x", "-1/m", "30/10 parsecs"])
def test_a_bad_rate_is_refused_at_start(rate):
    with pytest.raises(Exception, match="throttle rate"):
        throttling.parse_rate(rate)


@pytest.mark.django_db
def test_rotating_x_forwarded_for_does_not_escape_the_login_limit(api, settings):
    settings.AUCTION_THROTTLE_LOGIN_IP = "5/m"
    settings.AUCTION_NUM_PROXIES = 0
    for index in range(5):
        assert api.post("/auth/sandbox", {"openid": f"u{index}"}, headers={"X-Forwarded-For": f"10.0.0.{index}"}).status_code == 200
    assert_throttled(api.post("/auth/sandbox", {"openid": "u9"}, headers={"X-Forwarded-For": "10.9.9.9"}))


@pytest.mark.django_db
def test_behind_our_proxy_the_client_is_the_address_it_set(api, settings):
    # nginx sets X-Forwarded-For to the address it saw: anything the client wrote before it is not believed
    settings.AUCTION_THROTTLE_LOGIN_IP = "5/m"
    settings.AUCTION_NUM_PROXIES = 1
    for index in range(5):
        headers = {"X-Forwarded-For": f"1.2.3.{index}, 203.0.113.7"}
        assert api.post("/auth/sandbox", {"openid": f"u{index}"}, headers=headers).status_code == 200
    assert_throttled(api.post("/auth/sandbox", {"openid": "u9"}, headers={"X-Forwarded-For": "203.0.113.7"}))
    # another client behind the same proxy (the same REMOTE_ADDR) is counted apart
    assert api.post("/auth/sandbox", {"openid": "u9"}, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 200


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "9.9.9.9", "127.0.0.1"),
    (1, "9.9.9.9", "9.9.9.9"),
    (1, "6.6.6.6, 9.9.9.9", "9.9.9.9"),
    (2, "6.6.6.6, 9.9.9.9, 10.0.0.2", "9.9.9.9"),
    (2, "9.9.9.9", "127.0.0.1"),  # not through both proxies: nothing to believe
    (1, "", "127.0.0.1"),
    (1, "x" * 500, "x" * 64),
])
def test_the_client_ip_is_counted_from_the_right(settings, proxies, forwarded, expected):
    settings.AUCTION_NUM_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}))
    assert client_ip(request) == expected


@pytest.mark.django_db
def test_anonymous_reads_are_limited_per_ip_loosely_and_token_reads_not(api, user_api, clock, settings):
    assert settings.AUCTION_THROTTLE_ANONYMOUS_READ_IP == "3000/m"
    settings.AUCTION_THROTTLE_ANONYMOUS_READ_IP = "4/m"
    lot = LotFactory()
    for path in ("/specials", f"/specials/{lot.special_id}", f"/lots/{lot.pk}", f"/lots/{lot.pk}/bids"):
        assert api.get(path).status_code == 200
    assert_throttled(api.get("/coupons"))
    assert_throttled(api.get(f"/lots/{lot.pk}"))
    assert user_api.get(f"/lots/{lot.pk}").status_code == 200
    clock.advance(60)
    assert api.get(f"/lots/{lot.pk}").status_code == 200


@pytest.mark.django_db
def test_a_cache_that_is_down_lets_requests_through(api, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.AUCTION_THROTTLE_LOGIN_IP = "1/m"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{closed_port}/0"}}
    assert all(api.post("/auth/sandbox", {"openid": f"u{index}"}).status_code == 200 for index in range(3))


_COUNT_IN_ANOTHER_PROCESS = """
import django, json, sys
django.setup()
from api import throttling
throttling.clock = lambda: float(sys.argv[1])
print(json.dumps([throttling.window_hit("two-processes", rate="30/m") for _ in range(20)]))
"""


def _database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return f"mysql://{settings['USER'] or 'root'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 3306}/{settings['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_two_processes_count_together():
    # Two web workers: each lets 20 requests by, 30 are allowed in all.
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "project.settings"}
    waits = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", _COUNT_IN_ANOTHER_PROCESS, "1800000010"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        waits += json.loads(result.stdout.strip().splitlines()[-1])
    assert waits[:30] == [None] * 30
    assert waits[30:] == [50.0] * 10


@pytest.mark.django_db
def test_a_dropped_redis_connection_costs_one_uncounted_request_then_counts_again(settings):
    import redis
    from django.core.cache import caches

    # Our own Redis database (4), whatever this run's cache is; only our connection is dropped.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/4", "KEY_PREFIX": "throttle-reconnect-test"}}
    caches["default"].clear()
    assert [throttling.window_hit("reconnect", rate="2/m") for _ in range(3)][:2] == [None, None]
    connection = throttling._redis_connection(caches["default"])
    connection.send_command("CLIENT", "ID")
    redis.Redis.from_url("redis://127.0.0.1:6379/4").client_kill_filter(_id=connection.read_response())

    after = [throttling.window_hit("reconnect", rate="2/m") for _ in range(3)]

    assert after[0] is None  # let through while the connection was gone
    assert all(wait is not None and wait > 0 for wait in after[1:])  # counted again, over the limit
    caches["default"].clear()
