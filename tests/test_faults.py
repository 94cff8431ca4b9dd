"""Faults injected under load, black-box: gunicorn workers, 8 bidders over HTTP,
our own redis-server and mariadbd (tests/servers.py, free ports) that
these tests stop, hang, kill and restart, and the job cluster killed mid-work.

Whatever breaks, every bid is answered 201 or 409, or 503 ``unavailable`` in
the contract's shape at worst (never a 500); nothing is lost (every 201 the
client saw has its row, the rows are the lot's bid_count, one leader); and the
app recovers by itself. Each test prints its answers by status and phase.
MariaDB only (the real processes and their engines); skipped on SQLite.
"""

import logging
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from auction import signals
from auction.models import Bid, Deposit, Lot, Order, Refund, Special
from auction.services.bidding import bid_place
from auction.services.deposits import deposit_request
from auction.services.payments import payment_apply_success
from auction.services.tokens import token_issue
from tests.bidding_war import BidderThreads
from tests.factories import LotFactory, SpecialFactory, UserFactory
from tests.servers import PORT_BASE, MariaDBServer, RedisServer, port_is_open, wait_until
from tests.stack import Proc, gunicorn_workers, process_database_url, process_environment, spawn, spawn_gunicorn

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.mysql",
        reason="fault injection runs gunicorn, Redis and MariaDB processes: services configuration only",
    ),
    pytest.mark.django_db(transaction=True),
]

BIDDERS = 8
START_PRICE = 100_000
INCREMENT = 1_000
BIDS_PER_BIDDER_AT_MOST = 5_000  # every loop is bounded
ALLOWED = {201, 409, 503}


# --- the processes ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mariadb_server(tmp_path_factory):
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"))
    server.install()
    server.start()
    yield server
    server.stop()


_WEB_PORTS = iter(range(PORT_BASE + 10, PORT_BASE + 99))


@pytest.fixture
def web_port() -> int:
    """A port of ours (18410-18498) nothing listens on."""
    for port in _WEB_PORTS:
        if not port_is_open(port):
            return port
    pytest.fail(f"no free port left in {PORT_BASE + 10}-{PORT_BASE + 98}")


@pytest.fixture
def processes():
    # Thousands of requests: keep httpx's line per request out of the report.
    httpx_logger = logging.getLogger("httpx")
    level = httpx_logger.level
    httpx_logger.setLevel(logging.WARNING)
    started: list[Proc] = []
    yield started
    httpx_logger.setLevel(level)
    for proc in reversed(started):
        proc.stop()
    for proc in started:
        print(f"--- {proc.name} (exit {proc.popen.poll()}) ---\n{proc.tail(4_000)}")


def environment(tmp_path: Path, *, database_url: str, redis: RedisServer) -> dict[str, str]:
    return process_environment(
        tmp_path / "var",
        run=f"faults-{uuid.uuid4().hex[:10]}",
        DATABASE_URL=database_url,
        REDIS_URL=f"{redis.url}/0",
        REDIS_CACHE_URL=f"{redis.url}/1",
        # Every bid answer reads the shared cache, as throttle counters will:
        # the fault reaches each request instead of hiding behind a warm card.
        AUCTION_LOT_CARD_LOCAL_SECONDS="0",
        # Eight scripted bidders bid far faster than a person: the per-user limit
        # still counts every bid in Redis (so the fault reaches it) but never refuses.
        AUCTION_THROTTLE_BID="100000000/10s",
        LOG_LEVEL="WARNING",
    )


def start_gunicorn(processes: list[Proc], tmp_path: Path, env: dict[str, str], port: int, workers: int = 2) -> str:
    assert not port_is_open(port), f"port {port} is taken"
    proc = spawn_gunicorn("gunicorn", env, tmp_path, port=port, workers=workers)
    processes.append(proc)
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if proc.popen.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{proc.tail()}")
        try:
            with httpx.Client(trust_env=False, timeout=5) as client:
                return all(client.get(f"{url}/api/v1/specials").status_code == 200 for _ in range(2 * workers))
        except httpx.TransportError:
            return False

    wait_until("gunicorn answering", answering, timeout=60, interval=0.2)
    return url


# --- the bidding war -----------------------------------------------------------------------------------------


@dataclass
class Answer:
    at: float
    status: int | str  # an HTTP status, or the transport error's name
    code: str = ""
    bid_id: int | None = None
    price: int | None = None
    retry_after: str | None = None


def a_hot_lot(bidders: int = BIDDERS) -> tuple[Lot, list[str]]:
    special = SpecialFactory(ends_at=timezone.now() + timedelta(minutes=30), extension_seconds=0)
    lot = LotFactory(special=special, start_price=START_PRICE, increment=INCREMENT, deposit=10_000)
    tokens = []
    for _ in range(bidders):
        user = UserFactory()
        held_deposit(user, lot)
        tokens.append(token_issue(user=user))
    return lot, tokens


def held_deposit(user, lot) -> Deposit:
    deposit, payment, _ = deposit_request(user=user, lot_id=lot.pk)
    payment_apply_success(out_trade_no=payment.out_trade_no, transaction_id=f"t-{payment.pk}", amount=payment.amount)
    return deposit


class BiddingWar(BidderThreads):
    """BIDDERS threads bidding on one lot over HTTP until stopped, each bid at the
    lowest price the last answer allowed; every answer recorded with its time."""

    def __init__(self, url: str, lot_id: int, tokens: list[str]):
        self.url, self.tokens = url, tokens
        super().__init__(lot_id, tokens, START_PRICE)
        self.answers: list[Answer] = []
        self.marks: dict[str, float] = {}

    def __enter__(self):
        self.mark("start")
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.mark("end")

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def bid(self, token: str) -> None:
        client = httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {token}"},
                              trust_env=False, timeout=10)
        with client:
            for _ in range(BIDS_PER_BIDDER_AT_MOST):
                if self.stopping.is_set():
                    return
                answer = self.one_bid(client)
                with self.lock:
                    self.answers.append(answer)
                if answer.status != 201 and answer.code != "bid_too_low":
                    time.sleep(0.02 if answer.code == "already_leading" else 0.05)

    def one_bid(self, client: httpx.Client) -> Answer:
        price = self.next_price
        try:
            response = client.post(f"/lots/{self.lot_id}/bids", json={"price": price})
        except httpx.TransportError as error:
            return Answer(time.monotonic(), type(error).__name__, price=price)
        answer = Answer(time.monotonic(), response.status_code, retry_after=response.headers.get("Retry-After"))
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
        if response.status_code == 201:
            answer.bid_id, answer.price = body["bid"]["id"], body["bid"]["price"]
            self.raise_price(body["lot"]["next_min_bid"])
        elif response.status_code >= 400:
            assert set(body) == {"code", "message", "detail"}, response.text
            answer.code = body["code"]
            if answer.code == "bid_too_low":
                self.raise_price(body["detail"]["next_min_bid"])
        return answer

    def phase(self, first: str, last: str) -> list[Answer]:
        return [answer for answer in self.answers if self.marks[first] <= answer.at < self.marks[last]]

    def report(self, title: str, phases: list[tuple[str, str, str]]) -> str:
        lines = [f"{title}: {len(self.answers)} answers"]
        for label, first, last in phases:
            answers = self.phase(first, last)
            seconds = self.marks[last] - self.marks[first]
            counts = Counter(f"{answer.status} {answer.code}".strip() for answer in answers)
            lines.append(f"  {label:<8} {seconds:5.1f}s {len(answers) / seconds:6.0f}/s  {dict(sorted(counts.items()))}")
        text = "\n".join(lines)
        print(text)
        return text

    def accepted(self) -> dict[int, int]:
        return {answer.bid_id: answer.price for answer in self.answers if answer.status == 201}


def assert_answered_in_the_contract(war: BiddingWar, report: str, *, dropped_allowed: bool = False) -> None:
    statuses = Counter(answer.status for answer in war.answers)
    unexpected = {status: n for status, n in statuses.items() if status not in ALLOWED and not (dropped_allowed and isinstance(status, str))}
    assert not unexpected, f"answers outside 201/409/503: {unexpected}\n{report}"
    unavailable = [answer for answer in war.answers if answer.status == 503]
    assert all(answer.code == "unavailable" and answer.retry_after for answer in unavailable), report


def assert_nothing_lost(lot_id: int, accepted: dict[int, int], *, bids: dict[int, tuple[int, int]], lot_row) -> None:
    """Every 201 has its row at its price; the rows are the lot's bid_count; the leader holds the top bid."""
    bid_count, current_price, leader_id = lot_row
    assert len(bids) == bid_count, (len(bids), bid_count)
    missing = {bid_id: price for bid_id, price in accepted.items() if bids.get(bid_id, (None, None))[0] != price}
    assert not missing, f"201s without their row: {missing}"
    top_price, top_user = max(bids.values())
    assert (current_price, leader_id) == (top_price, top_user)


def bids_in_the_test_database(lot: Lot) -> tuple[dict[int, tuple[int, int]], tuple]:
    rows = {pk: (price, user_id) for pk, price, user_id in Bid.objects.filter(lot=lot).values_list("pk", "price", "user_id")}
    lot.refresh_from_db()
    return rows, (lot.bid_count, lot.current_price, lot.leader_id)


def wait_for_201s(war: BiddingWar, seconds: float = 20) -> None:
    """After a fault: the app answers bids again by itself."""
    since = time.monotonic()
    wait_until("201s again after the fault", lambda: any(a.status == 201 and a.at > since for a in war.answers), timeout=seconds)


# --- Redis ------------------------------------------------------------------------------------------------------


def test_redis_stopped_and_restarted_during_bidding_loses_no_bid_and_answers_no_500(
    redis_server, processes, tmp_path, web_port
):
    # given: gunicorn on the test database, our Redis as cache and broker, 8 bidders
    lot, tokens = a_hot_lot()
    url = start_gunicorn(processes, tmp_path, environment(tmp_path, database_url=process_database_url(), redis=redis_server),
                         web_port)
    with BiddingWar(url, lot.pk, tokens) as war:
        time.sleep(3)
        # when: Redis goes away for 4 s, then comes back empty
        war.mark("down")
        redis_server.stop()
        time.sleep(4)
        redis_server.start()
        war.mark("up")
        time.sleep(6)  # longer than the breaker (5 s): the app goes back to Redis by itself
        war.mark("after")
        wait_for_201s(war)
        time.sleep(1)
        war.mark("stop")
    report = war.report("Redis stopped 4 s", [("before", "start", "down"), ("down", "down", "up"),
                                               ("back", "up", "after"), ("after", "after", "end")])
    # then
    assert_answered_in_the_contract(war, report)
    assert any(a.status == 201 for a in war.phase("down", "up")), f"no bid accepted while Redis was down\n{report}"
    bids, lot_row = bids_in_the_test_database(lot)
    assert_nothing_lost(lot.pk, war.accepted(), bids=bids, lot_row=lot_row)
    # and the cache is used again, without a restart: the restarted (empty) Redis holds the card
    import redis

    assert redis.Redis.from_url(f"{redis_server.url}/1").keys("*lot-card*"), "nothing written to Redis after its restart"


def test_redis_hung_during_bidding_costs_no_bid_and_not_the_throughput(redis_server, processes, tmp_path, web_port):
    # given
    lot, tokens = a_hot_lot()
    url = start_gunicorn(processes, tmp_path, environment(tmp_path, database_url=process_database_url(), redis=redis_server),
                         web_port)
    with BiddingWar(url, lot.pk, tokens) as war:
        time.sleep(3)
        # when: Redis stops answering (SIGSTOP) for 4 s, then resumes
        war.mark("hung")
        redis_server.hang()
        try:
            time.sleep(4)
        finally:
            redis_server.resume()
        war.mark("resumed")
        time.sleep(3)
        war.mark("stop")
    report = war.report("Redis hung 4 s", [("before", "start", "hung"), ("hung", "hung", "resumed"),
                                            ("after", "resumed", "end")])
    # then: answered as ever, at a rate that did not collapse (the breaker, not a timeout per bid)
    assert_answered_in_the_contract(war, report)
    rate = {name: len(war.phase(first, last)) / (war.marks[last] - war.marks[first])
            for name, first, last in (("before", "start", "hung"), ("hung", "hung", "resumed"))}
    assert rate["hung"] > 0.35 * rate["before"], f"throughput collapsed: {rate}\n{report}"
    bids, lot_row = bids_in_the_test_database(lot)
    assert_nothing_lost(lot.pk, war.accepted(), bids=bids, lot_row=lot_row)


# --- MariaDB ----------------------------------------------------------------------------------------------------


def test_mariadb_killed_and_restarted_during_bidding_is_503_then_recovers_with_nothing_lost(
    mariadb_server, redis_server, processes, tmp_path, web_port
):
    # given: the lot and bidders, copied into our own MariaDB, which gunicorn uses
    lot, tokens = a_hot_lot()
    source = connection.settings_dict
    source_args = [f"-h{source['HOST'] or '127.0.0.1'}", f"-P{source['PORT'] or 3306}", f"-u{source['USER'] or 'root'}"]
    if source.get("PASSWORD"):
        source_args.append(f"-p{source['PASSWORD']}")
    name = f"faults_{uuid.uuid4().hex[:8]}"
    mariadb_server.copy_database(source_url_args=source_args, source_name=source["NAME"], name=name)
    env = environment(tmp_path, database_url=f"mysql://root@127.0.0.1:{mariadb_server.port}/{name}", redis=redis_server)
    url = start_gunicorn(processes, tmp_path, env, web_port)
    with BiddingWar(url, lot.pk, tokens) as war:
        time.sleep(3)
        # when: MariaDB is killed (no clean shutdown), stays down 4 s, and starts again (crash recovery)
        war.mark("down")
        mariadb_server.kill()
        time.sleep(4)
        mariadb_server.start()
        war.mark("up")
        wait_for_201s(war)
        war.mark("recovered")
        time.sleep(3)
        war.mark("stop")
    report = war.report("MariaDB killed 4 s", [("before", "start", "down"), ("down", "down", "up"),
                                                ("back", "up", "recovered"), ("after", "recovered", "end")])
    # then: 503 unavailable with Retry-After while it was down, never a 500, and bids again after
    assert_answered_in_the_contract(war, report)
    assert Counter(a.status for a in war.phase("down", "up"))[503] > 0, report
    after = war.phase("recovered", "end")
    assert after and all(a.status in (201, 409) for a in after), f"not recovered: {Counter(a.status for a in after)}\n{report}"
    rows = mariadb_server.query(name, f"SELECT id, price, user_id FROM auction_bid WHERE lot_id = {lot.pk}")
    bids = {int(pk): (int(price), int(user)) for pk, price, user in rows}
    (bid_count, current_price, leader_id), = mariadb_server.query(
        name, f"SELECT bid_count, current_price, leader_id FROM auction_lot WHERE id = {lot.pk}")
    assert_nothing_lost(lot.pk, war.accepted(), bids=bids, lot_row=(int(bid_count), int(current_price), int(leader_id)))
    # and when MariaDB restarts while the workers are idle, their kept connections
    # are dead: the first requests after are answered all the same (project/dbhealth.py)
    mariadb_server.kill()
    mariadb_server.start()
    time.sleep(1.2)  # longer than AUCTION_DB_IDLE_PING_SECONDS
    with httpx.Client(base_url=f"{url}/api/v1", trust_env=False, timeout=10) as client:
        first_after = Counter(client.get(f"/lots/{lot.pk}").status_code for _ in range(6))
    print(f"first requests after an idle restart: {dict(first_after)}")
    assert first_after == {200: 6}, first_after


# --- gunicorn workers -------------------------------------------------------------------------------------------


def test_a_worker_killed_mid_request_loses_and_doubles_no_bid(redis_server, processes, tmp_path, web_port):
    # given
    lot, tokens = a_hot_lot()
    url = start_gunicorn(processes, tmp_path, environment(tmp_path, database_url=process_database_url(), redis=redis_server),
                         web_port, workers=3)
    master = processes[-1].popen.pid
    survivor = min(gunicorn_workers(master))  # one worker always serves while the others boot again
    killed = []
    with BiddingWar(url, lot.pk, tokens) as war:
        time.sleep(2)
        war.mark("kills")
        # when: a busy worker is killed (SIGKILL) four times, half a second apart
        for _ in range(4):
            workers = [pid for pid in gunicorn_workers(master) if pid != survivor]
            if workers:
                victim = random.choice(workers)
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            time.sleep(0.5)
        war.mark("killed")
        wait_for_201s(war)
        time.sleep(2)
        war.mark("stop")
    report = war.report(f"{len(killed)} workers killed", [("before", "start", "kills"), ("kills", "kills", "killed"),
                                                           ("after", "killed", "end")])
    # then: a dropped connection is the only new answer; every 201 has its row, once
    assert killed, "no worker found to kill"
    assert_answered_in_the_contract(war, report, dropped_allowed=True)
    bids, lot_row = bids_in_the_test_database(lot)
    assert_nothing_lost(lot.pk, war.accepted(), bids=bids, lot_row=lot_row)
    assert len(set(war.accepted())) == len(war.accepted()), "two 201s for one bid"
    assert len(gunicorn_workers(master)) == 3, "gunicorn did not replace its workers"


# --- the job cluster -----------------------------------------------------------------------------------------------

LOTS = 30


def test_the_job_cluster_killed_mid_settlement_and_restarted_settles_every_lot_once(redis_server, processes, tmp_path):
    # given: 30 lots ending in a few seconds, each won by A, with B's deposit to refund
    a, b = UserFactory(nickname="阿甲"), UserFactory(nickname="贝乙")
    special = SpecialFactory(ends_at=timezone.now() + timedelta(minutes=5), extension_seconds=0)
    lots = []
    for position in range(LOTS):
        lot = LotFactory(special=special, position=position, start_price=START_PRICE, deposit=10_000)
        held_deposit(a, lot)
        held_deposit(b, lot)
        bid_place(lot_id=lot.pk, user=a, price=START_PRICE)
        lots.append(lot)
    # ... all ending a moment from now, with their exact-time schedules, as publishing makes them
    ends_at = timezone.now() + timedelta(seconds=2)
    Special.objects.filter(pk=special.pk).update(ends_at=ends_at)
    Lot.objects.filter(special=special).update(ends_at=ends_at, version=F("version") + 1)
    for lot in lots:
        signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=ends_at)
    losers = set(Deposit.objects.filter(user=b).values_list("pk", flat=True))
    # A refund whose poll task died with the cluster is the restart's first sweep's to poll.
    # What the dead cluster held comes back in seconds, not the production minute: its
    # turn at the sweep (AUCTION_SWEEP_SECONDS) and the refund batch it had claimed.
    env = {**environment(tmp_path, database_url=process_database_url(), redis=redis_server),
           "AUCTION_REFUND_POLL_AFTER_SECONDS": "1", "AUCTION_SWEEP_SECONDS": "2", "AUCTION_REFUND_CLAIM_LEASE_SECONDS": "5"}
    jobs_args = [sys.executable, "manage.py", "runjobs", "--tick", "1"]

    def runjobs(name: str) -> Proc:
        proc = spawn(name, jobs_args, env, tmp_path, signal.SIGTERM)
        processes.append(proc)
        return proc

    # when: the cluster starts settling, and is killed (SIGKILL, its whole group) in the middle
    first = runjobs("runjobs")
    wait_until("the first order", Order.objects.exists, timeout=40, interval=0.02)
    os.killpg(first.popen.pid, signal.SIGKILL)
    first.popen.wait(timeout=10)
    at_kill = (Order.objects.count(), Refund.objects.filter(status="succeeded").count())
    print(f"killed with {at_kill[0]}/{LOTS} orders and {at_kill[1]}/{LOTS} refunds done")
    # and is started again
    runjobs("runjobs-again")

    def all_done() -> bool:
        return (Order.objects.count() == LOTS
                and Refund.objects.filter(status="succeeded").count() == LOTS
                and Deposit.objects.filter(pk__in=losers, status="refunded").count() == LOTS)

    wait_until("every lot settled and every loser refunded", all_done, timeout=45, interval=0.3)
    # then: one order per lot, one refund per loser, nothing else
    assert at_kill != (LOTS, LOTS), "the cluster finished before it was killed: nothing was tested"
    assert sorted(Order.objects.values_list("lot_id", flat=True)) == sorted(lot.pk for lot in lots)
    assert set(Order.objects.values_list("user_id", flat=True)) == {a.pk}
    refunds = Counter(Refund.objects.values_list("payment__deposit_id", flat=True))
    assert set(refunds) == losers and set(refunds.values()) == {1}
    assert set(Lot.objects.filter(pk__in=[lot.pk for lot in lots]).values_list("status", flat=True)) == {"sold"}
    assert set(Deposit.objects.filter(user=a).values_list("status", flat=True)) == {"held"}
