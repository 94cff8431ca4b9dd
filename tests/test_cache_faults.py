"""A cache is never needed for correctness; a database outage is a 503, not a 500.

Redis here is a real one: a port where nothing listens (down), or our own
redis-server stopped with SIGSTOP (hung). Runs on both configurations.
"""

import logging
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from auction.models import Lot, Refund
from auction.services.catalog import Content, LotTerms, SpecialTerms, lot_publish, special_publish
from jobs import schedules
from project.cache import DegradingRedisCache
from tests.conftest import assert_error
from tests.factories import LotFactory
from tests.market import bid, bidder, hammer, pay_deposit, sweep_until_quiet
from tests.servers import RedisServer, closed_port

TIMEOUT_MS = 50


def redis_cache(url: str, *, breaker_seconds: float = 5) -> DegradingRedisCache:
    return DegradingRedisCache(url, {"OPTIONS": {"timeout_ms": TIMEOUT_MS, "breaker_seconds": breaker_seconds}})


def timed(call):
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started


@pytest.fixture
def hung_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_with_redis_down_every_operation_degrades_instead_of_raising(caplog):
    # given: nothing listens where the cache points
    cache = redis_cache(f"redis://127.0.0.1:{closed_port()}/0")
    # then: each answers as an empty cache would, throttles fail open
    with caplog.at_level(logging.WARNING, logger="project.cache"):
        assert cache.get("card", "miss") == "miss"
        assert cache.set("card", {"title": "x"}) is None
        assert cache.add("throttle", 1) is True
        assert cache.incr("throttle", 3) == 3
        assert cache.get_many(["a", "b"]) == {}
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert cache.delete("card") is False
        assert cache.has_key("card") is False
        assert cache.touch("card") is False
        cache.clear()
    # one warning for the outage, not one per call
    assert len([record for record in caplog.records if "skipping it" in record.getMessage()]) == 1


def test_a_hung_redis_costs_one_call_its_timeout_then_the_breaker_skips_it(hung_redis):
    # given: a live Redis, then hung (SIGSTOP)
    cache = redis_cache(hung_redis.url, breaker_seconds=0.5)
    cache.set("card", "before")
    assert cache.get("card") == "before"
    hung_redis.hang()
    try:
        # when / then: the first call waits its timeout, the next ones nothing
        value, first = timed(lambda: cache.get("card", "miss"))
        assert value == "miss" and first < 4 * TIMEOUT_MS / 1000, first
        for _ in range(100):
            value, later = timed(lambda: cache.get("card", "miss"))
            assert value == "miss" and later < 0.005, later
    finally:
        hung_redis.resume()
    # then: once the breaker's time is up, Redis is used again, without a restart
    time.sleep(0.6)
    assert cache.get("card") == "before"
    assert cache.add("counter", 1) is True and cache.incr("counter") == 2


def test_a_missing_counter_is_still_the_callers_value_error(hung_redis):
    # Django's contract for incr on a missing key holds: that is logic, not an outage.
    cache = redis_cache(hung_redis.url)
    with pytest.raises(ValueError):
        cache.incr("never-set")
    assert cache.get("x", "live") == "live" and not cache.breaker.is_open()


@pytest.mark.django_db
def test_a_leading_bid_is_answered_201_while_redis_is_down(client, settings):
    # given: the shared cache is a Redis that is down, and no card is warm anywhere
    settings.CACHES = {"default": {"BACKEND": "project.cache.DegradingRedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
                                   "OPTIONS": {"timeout_ms": TIMEOUT_MS, "breaker_seconds": 5}}}
    lot = published_lot(title="青花瓷瓶")
    bidders = [bidder(client), bidder(client)]
    for api in bidders:
        pay_deposit(api, lot_id=lot.pk)
    # when: two bids, the second leading
    first = bid(bidders[0], lot.pk, 100_000)
    second = bid(bidders[1], lot.pk, first.json()["lot"]["next_min_bid"])
    # then: both answered from the database's card
    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    assert second.json()["lot"]["title"] == "青花瓷瓶"
    assert Lot.objects.get(pk=lot.pk).leader_id == bidders[1].user.pk


def published_lot(*, title: str, page_id: int = 9101) -> Lot:
    now = timezone.now()
    special_terms = SpecialTerms(preview_at=now - timedelta(hours=2), starts_at=now - timedelta(hours=1),
                                 ends_at=now + timedelta(hours=1), extension_seconds=0)
    special_publish(page_id=page_id - 1, content=Content(title="专场"), terms=special_terms, lot_page_ids=[page_id])
    return lot_publish(page_id=page_id, special_page_id=page_id - 1, position=0, content=Content(title=title),
                       terms=LotTerms(start_price=100_000, deposit=10_000)).row


@pytest.mark.django_db
def test_an_editors_new_title_is_in_the_next_bid_answer_of_every_process(client):
    # given: a card cached, in this process and in the shared cache
    lot = published_lot(title="旧题")
    bidders = [bidder(client), bidder(client)]
    for api in bidders:
        pay_deposit(api, lot_id=lot.pk)
    first = bid(bidders[0], lot.pk, 100_000)
    assert first.json()["lot"]["title"] == "旧题"
    # when: the editor publishes a new title (no process is told anything)
    lot_publish(page_id=lot.page_id, special_page_id=lot.special.page_id, position=0, content=Content(title="新题"),
                terms=LotTerms(start_price=100_000, deposit=10_000))
    # then: the next bid answer shows it, here and from the shared cache alone
    second = bid(bidders[1], lot.pk, first.json()["lot"]["next_min_bid"])
    assert second.json()["lot"]["title"] == "新题"
    from auction.selectors import lot_cards_forget_local

    lot_cards_forget_local()  # another process: nothing of this one's memory
    third = bid(bidders[0], lot.pk, second.json()["lot"]["next_min_bid"])
    assert third.json()["lot"]["title"] == "新题"


def test_enqueueing_with_the_broker_down_leaves_the_work_to_the_sweep(monkeypatch, caplog):
    # given: the job queue on a Redis that is down
    monkeypatch.setattr("django_q.conf.Conf.REDIS", f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.setattr(schedules, "_broker", None)
    monkeypatch.setattr(schedules, "_breaker", schedules.Breaker("job broker (Redis)", 5))
    # when: a request's change asks for a job, twice
    with caplog.at_level(logging.WARNING):
        _, first = timed(lambda: schedules.enqueue("jobs.tasks.refund_submit", 1))
        _, second = timed(lambda: schedules.enqueue("jobs.tasks.refund_submit", 2))
    # then: no error, a short wait once, none the second time, and a log line for ops
    assert first < 1 and second < 0.005, (first, second)
    assert any("job broker" in record.getMessage() for record in caplog.records)


@pytest.fixture
def database_down(monkeypatch):
    """The database answering as a restarting MariaDB does (2013 / 2006)."""

    def lost(*args, **kwargs):
        raise OperationalError(2013, "Lost connection to server during query")

    def install(target: str) -> None:
        monkeypatch.setattr(target, lost)

    return install


@pytest.mark.django_db
@pytest.mark.parametrize(
    "target, call",
    [
        ("auction.selectors.specials_list", lambda api: api.get("/specials")),
        # the direct bid route (api/bid_route.py), past Ninja's routing
        ("auction.services.bidding.market_read", lambda api: api.post("/lots/1/bids", {"price": 100_000})),
        # a bearer token checked by TokenAuth
        ("api.security.token_user", lambda api: api.get("/me")),
    ],
)
def test_a_database_outage_is_503_unavailable_with_retry_after(user_api, database_down, target, call):
    database_down(target)
    response = call(user_api)
    body = assert_error(response, 503, "unavailable")
    assert response["Retry-After"] == "2" and body["detail"] == {"retry_after": 2}


@pytest.mark.django_db
def test_a_request_whose_change_enqueues_a_job_is_answered_with_the_broker_down(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the job queue on a Redis that is down, and a deposit paid after its lot ended
    monkeypatch.setattr("django_q.conf.Conf.REDIS", f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.setattr(schedules, "_broker", None)
    monkeypatch.setattr(schedules, "_breaker", schedules.Breaker("job broker (Redis)", 5))
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    payment = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    hammer(lot)
    # when: the payment succeeds, which refunds the deposit and enqueues the refund's submission
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        paid = a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed")
    # then: answered, the refund waits for the sweep, which does it
    assert paid.status_code == 200, paid.content
    assert callbacks, "nothing was enqueued: the test no longer reaches the broker"
    refund = Refund.objects.get(payment__deposit__user=a.user)
    assert refund.status == "pending"
    sweep_until_quiet()
    refund.refresh_from_db()
    assert refund.status == "succeeded"
