"""The hammer, refunds, paying and overdue end to end: HTTP against a real web
server, consequences carried out by the real job cluster (``manage.py
runjobs``), each in its own process, all on the test database.

The same file runs on the embedded default (SQLite file, Django-Q2's
database broker, ``runserver``) and on the services (``DATABASE_URL`` MySQL,
``REDIS_URL`` Redis broker, gunicorn when installed). Nothing here moves a
clock or calls a job while the cluster runs: the lot ends by itself and the
cluster must notice. Once it has stopped, every job runs again in this
process, and must change nothing.
"""

import importlib.util
import logging
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule, Task

from auction import signals
from auction.models import Deposit, Event, Lot, Order, Payment, Refund, Special
from jobs import tasks
from tests.factories import LotFactory, SpecialFactory
from tests.stack import (  # noqa: F401  (ENV_DROPPED, Proc: imported from here by older helpers)
    ENV_DROPPED,
    Proc,
    free_port,
    process_database_url,
    process_environment,
    spawn,
    spawn_gunicorn,
    spawn_runjobs,
)

pytestmark = pytest.mark.django_db(transaction=True)

# From the lot's creation to its hammer: room for two deposits and two bids.
LOT_SECONDS = 7
OVERDUE_WINDOW_SECONDS = 8
# With ``--tick 1`` an order appears a second or two after the hammer; the
# sweep alone (every minute) or Django-Q2's own scheduler (every 30 s) would
# take far longer, so this bound tells promptness from mere certainty.
PROMPT_SECONDS = 12
WAIT_SECONDS = 30
ADDRESS = {"name": "阿甲", "phone": "13800000000", "region": "上海市", "detail": "南京东路 1 号"}
# The process helpers live in tests/stack.py; these names stay importable from here.
_free_port = free_port
_spawn = spawn
_test_database_url = process_database_url


@dataclass
class Stack:
    """The web server and the job cluster, on the test database."""

    url: str
    procs: list[Proc] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)

    def tails(self) -> str:
        return "\n".join(f"--- {proc.name} (exit {proc.popen.poll()}) ---\n{proc.tail()}" for proc in self.procs)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is not None:
                pytest.fail(f"{proc.name} exited with {proc.popen.returncode}:\n{self.tails()}")

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        for proc in reversed(self.procs):
            proc.stop()

    def api(self, token: str | None = None) -> httpx.Client:
        """A client for /api/v1 on this server only (trust_env=False: no proxy)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, trust_env=False, timeout=15)
        self.clients.append(client)
        return client


def _wait_for(what: str, probe, stack: Stack, timeout: float = WAIT_SECONDS, interval: float = 0.2):
    """Poll ``probe`` until it returns something truthy; fail with the processes' logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        stack.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s\n{stack.tails()}")
        time.sleep(interval)


@pytest.fixture
def start_stack(transactional_db, tmp_path):
    """Start the web server and ``runjobs --tick 1`` for one test.

    Per test, because a transactional test's data is flushed after it; this
    fixture depends on ``transactional_db``, so the processes are stopped
    before that flush runs.
    """
    stacks: list[Stack] = []
    # Every poll is a request: keep httpx's log of them out of a failure's report.
    httpx_logger = logging.getLogger("httpx")
    httpx_level = httpx_logger.level
    httpx_logger.setLevel(logging.WARNING)

    def start(*, payment_window: int = 86400) -> Stack:
        run = uuid.uuid4().hex[:10]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        # Its own queue (Redis list or ORM key) and cache keys: nothing
        # another run left behind reaches this cluster.
        env = process_environment(tmp_path / "var", run=f"e2e-{run}", AUCTION_PAYMENT_WINDOW_SECONDS=str(payment_window))
        stack = Stack(url=url)
        stacks.append(stack)
        if connection.vendor != "sqlite" and importlib.util.find_spec("gunicorn"):
            # The production shape: deploy/gunicorn.conf.py, two worker processes.
            stack.procs.append(spawn_gunicorn("gunicorn", env, tmp_path, port=port))
        else:
            web_args = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
            stack.procs.append(spawn("runserver", web_args, env, tmp_path, signal.SIGINT))
        stack.procs.append(spawn_runjobs("runjobs", env, tmp_path))

        def web_is_up():
            try:
                with stack.api() as client:
                    # A few answers, so every web worker has loaded the URLconf.
                    return all(client.get("/specials").status_code == 200 for _ in range(4))
            except httpx.TransportError:
                return False

        _wait_for("the web server answering", web_is_up, stack, timeout=60)
        # Ready: the sweep, due at once, ran in runjobs' sweep thread, which starts
        # once the cluster's workers, pusher and monitor are up (jobs/sweeper.py).
        first_sweep = Task.objects.filter(func="jobs.tasks.sweep", success=True)
        _wait_for("the job cluster's first sweep (the schedule ticker)", first_sweep.exists, stack, timeout=20)
        return stack

    yield start
    httpx_logger.setLevel(httpx_level)
    for stack in stacks:
        stack.stop()
        # Shown by pytest only when the test failed.
        print(stack.tails())


def login(stack: Stack, nickname: str) -> httpx.Client:
    with stack.api() as client:
        response = client.post("/auth/sandbox", json={"openid": f"e2e-{uuid.uuid4().hex}", "nickname": nickname})
    assert response.status_code == 200, response.text
    return stack.api(response.json()["token"])


def pay_deposit(api: httpx.Client, lot_id: int) -> dict:
    created = api.post("/deposits", json={"lot_id": lot_id})
    assert created.status_code == 201, created.text
    paid = api.post(f"/payments/sandbox/{created.json()['payment']['out_trade_no']}/succeed")
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text
    return created.json()["deposit"]


def deposit_status(api: httpx.Client, deposit_id: int) -> str:
    response = api.get("/deposits")
    assert response.status_code == 200, response.text
    return next(item["status"] for item in response.json()["items"] if item["id"] == deposit_id)


def a_lot_ending_soon() -> Lot:
    """A lot whose end comes in LOT_SECONDS. The factories skip publishing, so the
    times are announced here as publishing does; the jobs app's receivers turn
    them into exact-time schedules."""
    special = SpecialFactory(ends_at=timezone.now() + timedelta(seconds=LOT_SECONDS), extension_seconds=0)
    lot = LotFactory(special=special, start_price=100_000, deposit=50_000)
    signals.special_times_changed.send(sender=Special, special_id=special.pk)
    signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=lot.ends_at)
    assert Schedule.objects.filter(name=f"lots end at {lot.ends_at.isoformat()}").exists()
    return lot


def bidding(stack: Stack) -> tuple[Lot, httpx.Client, httpx.Client, dict, dict]:
    """A and B log in and pay deposits, B bids, A outbids: A leads when the lot ends."""
    a, b = login(stack, "阿甲"), login(stack, "贝乙")
    lot = a_lot_ending_soon()
    deposit_a, deposit_b = pay_deposit(a, lot.pk), pay_deposit(b, lot.pk)
    first = b.post(f"/lots/{lot.pk}/bids", json={"price": 100_000})
    assert first.status_code == 201, first.text
    second = a.post(f"/lots/{lot.pk}/bids", json={"price": first.json()["lot"]["next_min_bid"]})
    assert second.status_code == 201, second.text
    assert second.json()["lot"]["current_price"] == 110_000
    seconds_left = (lot.ends_at - timezone.now()).total_seconds()
    assert seconds_left > 0, "bidding took longer than the lot was open: raise LOT_SECONDS"
    return lot, a, b, deposit_a, deposit_b


def order_appears(stack: Stack, a: httpx.Client, lot: Lot) -> dict:
    """Wait for the cluster's settlement; print and check how soon after the hammer it came."""

    def probe():
        items = a.get("/orders").json()["items"]
        return items[0] if items else None

    order = _wait_for("A's order after the hammer", probe, stack, timeout=LOT_SECONDS + WAIT_SECONDS)
    lot.refresh_from_db()
    late = (datetime.fromisoformat(order["created_at"]) - lot.ends_at).total_seconds()
    print(f"promptness: order {order['order_no']} created {late:.2f}s after ends_at ({connection.vendor}, tick 1s)")
    assert 0 <= late < PROMPT_SECONDS, (
        f"order came {late:.1f}s after the hammer: the exact-time schedule did not fire\n{stack.tails()}"
    )
    assert (order["status"], order["price"], order["deposit_credit"], order["amount_due"]) == (
        "pending_payment",
        110_000,
        50_000,
        60_000,
    )
    assert lot.status == "sold"
    # The exact-time schedule's task made it (the monitor saves results a moment later).
    settled = Task.objects.filter(func="jobs.tasks.lots_end", success=True).values_list("result", flat=True)
    _wait_for("the lots_end task's result", lambda: any("1 lots settled" in str(result) for result in settled.all()), stack)
    return order


def refunded_through_the_cluster(stack: Stack, b: httpx.Client, deposit_b: dict) -> None:
    _wait_for("B's deposit refunded", lambda: deposit_status(b, deposit_b["id"]) == "refunded", stack)
    kinds = list(Event.objects.filter(deposit_id=deposit_b["id"]).order_by("id").values_list("kind", flat=True))
    assert kinds.index("deposit.held") < kinds.index("deposit.refunding") < kinds.index("deposit.refunded"), kinds
    refund = Refund.objects.get(payment__deposit_id=deposit_b["id"])
    assert (refund.status, refund.amount, refund.attempts) == ("succeeded", 50_000, 1)
    refund_kinds = list(Event.objects.filter(refund=refund).order_by("id").values_list("kind", flat=True))
    assert refund_kinds == ["refund.created", "refund.submitted", "refund.succeeded"], refund_kinds


def each_event_once(*kinds: str) -> None:
    """Nothing ran twice: two schedulers, the sweep and the exact-time tasks all ran."""
    for kind in kinds:
        assert Event.objects.filter(kind=kind).count() == 1, (kind, list(Event.objects.values_list("kind", flat=True)))


def snapshot() -> dict:
    return {
        "lots": list(Lot.objects.order_by("pk").values_list("pk", "status", "version", "current_price", "leader_id")),
        "specials": list(Special.objects.order_by("pk").values_list("pk", "status")),
        "orders": list(
            Order.objects.order_by("pk").values_list("pk", "status", "paid_at", "deposit_credit", "coupon_discount")
        ),
        "deposits": list(Deposit.objects.order_by("pk").values_list("pk", "status")),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", "status")),
        "refunds": list(Refund.objects.order_by("pk").values_list("pk", "status", "attempts")),
        "events": Event.objects.count(),
        "schedules": sorted(Schedule.objects.values_list("name", "next_run")),
    }


def jobs_again_change_nothing(stack: Stack, lot: Lot, monkeypatch) -> None:
    """Every job once more, in this process, with the cluster stopped: nothing changes."""
    stack.stop()
    enqueued = []
    monkeypatch.setattr("jobs.schedules.async_task", lambda *args, **kwargs: enqueued.append(args))
    before = snapshot()
    tasks.sweep()
    tasks.lot_end(lot.pk)
    tasks.special_phase(lot.special_id)
    tasks.special_deposits(lot.special_id)
    for order_id in Order.objects.values_list("pk", flat=True):
        tasks.order_expire(order_id)
    for refund_id in Refund.objects.values_list("pk", flat=True):
        tasks.refund_submit(refund_id)
        tasks.refund_poll(refund_id)
    assert snapshot() == before
    assert enqueued == []


def test_a_wins_b_is_refunded_a_pays_the_deposit_is_applied(start_stack, monkeypatch):
    stack = start_stack()
    lot, a, b, deposit_a, deposit_b = bidding(stack)
    # then, with no help: the cluster settles the lot and refunds B
    order = order_appears(stack, a, lot)
    refunded_through_the_cluster(stack, b, deposit_b)
    assert deposit_status(a, deposit_a["id"]) == "held"
    assert b.get(f"/orders/{order['order_no']}").status_code == 404
    # when: A pays the rest
    paying = a.post(f"/orders/{order['order_no']}/pay", json={"address": ADDRESS})
    assert paying.status_code == 200, paying.text
    payment = paying.json()["payment"]
    assert payment["amount"] == 60_000
    paid = a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed")
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text
    # then
    shown = a.get(f"/orders/{order['order_no']}").json()
    assert shown["status"] == "paid" and shown["paid_at"]
    assert deposit_status(a, deposit_a["id"]) == "applied"
    assert a.get(f"/lots/{lot.pk}").json()["status"] == "sold"
    # the special's end ran too, and nothing ran twice
    _wait_for("the special ended", lambda: Special.objects.get(pk=lot.special_id).status == "ended", stack)
    each_event_once(
        "lot.sold",
        "order.created",
        "deposit.refunding",
        "refund.submitted",
        "deposit.refunded",
        "order.paid",
        "deposit.applied",
    )
    assert Refund.objects.count() == 1 and Order.objects.count() == 1
    jobs_again_change_nothing(stack, lot, monkeypatch)


def test_a_does_not_pay_the_order_goes_overdue_and_the_deposit_is_forfeited(start_stack, monkeypatch):
    stack = start_stack(payment_window=OVERDUE_WINDOW_SECONDS)
    lot, a, b, deposit_a, deposit_b = bidding(stack)
    order = order_appears(stack, a, lot)
    # The window counts from the order's creation (settled a moment after the end).
    deadline = datetime.fromisoformat(order["pay_deadline"])
    created = datetime.fromisoformat(order["created_at"])
    assert timedelta(seconds=OVERDUE_WINDOW_SECONDS - 1) < deadline - created <= timedelta(seconds=OVERDUE_WINDOW_SECONDS)
    assert deadline >= lot.ends_at + timedelta(seconds=OVERDUE_WINDOW_SECONDS)
    refunded_through_the_cluster(stack, b, deposit_b)
    # when: A lets the window pass; then the cluster closes the order
    _wait_for(
        "the order overdue",
        lambda: a.get(f"/orders/{order['order_no']}").json()["status"] == "overdue",
        stack,
        timeout=OVERDUE_WINDOW_SECONDS + WAIT_SECONDS,
    )
    closed_at = Event.objects.get(kind="order.overdue").created_at
    late = (closed_at - deadline).total_seconds()
    print(f"promptness: order went overdue {late:.2f}s after its pay_deadline")
    assert 0 <= late < PROMPT_SECONDS, f"overdue came {late:.1f}s after the deadline\n{stack.tails()}"
    assert deposit_status(a, deposit_a["id"]) == "forfeited"
    assert a.get(f"/lots/{lot.pk}").json()["status"] == "defaulted"
    assert deposit_status(b, deposit_b["id"]) == "refunded"
    refused = a.post(f"/orders/{order['order_no']}/pay", json={"address": ADDRESS})
    assert refused.status_code == 409 and refused.json()["code"] == "order_not_payable", refused.text
    each_event_once(
        "lot.sold", "order.created", "order.overdue", "lot.defaulted", "deposit.forfeited", "deposit.refunded"
    )
    assert Refund.objects.count() == 1 and Order.objects.count() == 1
    jobs_again_change_nothing(stack, lot, monkeypatch)
