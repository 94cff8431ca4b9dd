"""A big sale's end through the real job cluster (``manage.py runjobs``): SIGKILLed
in the middle of it and started again, each order and refund exists and is sent
once; SIGTERM under a backlog stops it within its grace."""

import os
import signal
import sys
import time
import uuid

import pytest

from auction import signals
from auction.models import Event, Lot, Refund, RefundStatus
from tests.test_e2e_cluster import ENV_DROPPED, Stack, _spawn, _test_database_url, _wait_for
from tests.test_settlement_batches import a_sale, each_once

pytestmark = pytest.mark.django_db(transaction=True)


def cluster_env(tmp_path, run: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ENV_DROPPED}
    env.update({
        "DATABASE_URL": _test_database_url(), "DJANGO_SETTINGS_MODULE": "project.settings", "AUCTION_SANDBOX": "1",
        "AUCTION_PAYMENT_GATEWAY": "sandbox", "AUCTION_VAR_DIR": str(tmp_path / "var"), "Q_CLUSTER_NAME": f"kill-{run}",
        "CACHE_KEY_PREFIX": f"kill-{run}", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **extra,
    })
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env


def start_cluster(stack: Stack, env: dict, tmp_path, name: str) -> None:
    stack.procs.append(_spawn(name, [sys.executable, "manage.py", "runjobs", "--tick", "1"], env, tmp_path, signal.SIGTERM))


@pytest.mark.mariadb
def test_a_cluster_killed_in_the_middle_of_a_sale_and_started_again_does_each_thing_once(tmp_path):
    # given: 60 lots that ended together, 180 losing deposits; a gateway rate slow enough to kill mid-way
    lots = a_sale(60)
    signals.lot_end_changed.send(sender=Lot, lot_id=lots[0].pk, ends_at=Lot.objects.get(pk=lots[0].pk).ends_at)
    env = cluster_env(tmp_path, uuid.uuid4().hex[:8], AUCTION_REFUND_RATE_PER_SECOND="30", AUCTION_REFUND_BATCH="20")
    stack, stack_of_the_killed = Stack(url=""), Stack(url="")
    submitted = Refund.objects.exclude(status=RefundStatus.PENDING)
    try:
        # when: the cluster is SIGKILLed, its whole process group, while refunds are being sent
        start_cluster(stack, env, tmp_path, "runjobs-1")
        _wait_for("some refunds submitted", lambda: submitted.count() > 0, stack, timeout=60, interval=0.05)
        os.killpg(stack.procs[0].popen.pid, signal.SIGKILL)
        stack.procs[0].popen.wait(timeout=10)
        killed = stack.procs.pop()  # dead on purpose: not a failure of the next wait
        stack_of_the_killed.procs.append(killed)
        at_kill = submitted.count()
        assert at_kill < 180, "everything was sent before the kill: lower the rate"
        # and started again: the sweep at start finds what is due and undone
        start_cluster(stack, env, tmp_path, "runjobs-2")
        done = Refund.objects.filter(status=RefundStatus.SUCCEEDED)
        _wait_for("every refund completed", lambda: done.count() == 180, stack, timeout=150, interval=0.5)
    finally:
        stack.stop()
        stack_of_the_killed.stop()
    # then: each order and refund once, each refund submitted once and completed once
    print(f"killed with {at_kill} of 180 refunds submitted")
    each_once(60)
    assert Event.objects.filter(kind="refund.submitted").count() == 180
    assert Event.objects.filter(kind="refund.succeeded").count() == 180
    assert Event.objects.filter(kind="deposit.refunded").count() == 180


def test_sigterm_under_a_backlog_stops_runjobs_within_its_grace(tmp_path):
    # given: a cluster with a backlog (a hundred 3-second tasks queued before it starts)
    from django_q.conf import Conf
    from django_q.tasks import async_task

    env = cluster_env(tmp_path, uuid.uuid4().hex[:8])
    prefix = Conf.PREFIX
    Conf.PREFIX = env["Q_CLUSTER_NAME"]  # the broker's queue is named for the cluster
    try:
        for _ in range(100):
            async_task("time.sleep", 3)
    finally:
        Conf.PREFIX = prefix
    stack = Stack(url="")
    try:
        start_cluster(stack, env, tmp_path, "runjobs")
        time.sleep(12)  # up, and busy with the backlog
        stack.check_alive()
        # when: SIGTERM to its whole process group, as systemd sends it
        started = time.monotonic()
        os.killpg(stack.procs[0].popen.pid, signal.SIGTERM)
        stack.procs[0].popen.wait(timeout=60)
        took = time.monotonic() - started
    finally:
        stack.stop()
    # then: within the grace (20 s) and a margin, not after the backlog (100 x 3 s / 2 workers)
    print(f"runjobs stopped {took:.1f} s after SIGTERM")
    assert took < 30, stack.tails()
