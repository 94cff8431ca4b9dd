"""A big sale's end through the real job cluster (``manage.py runjobs``): SIGKILLed
in the middle of it and started again, each order and refund exists and is sent
once; the sweep does its work beside a backlog of thousands of tasks; SIGTERM
under a backlog, to the process group or to the main process only, stops it
within its grace, and the next start carries on."""

import os
import signal
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from auction import signals
from auction.models import Deposit, DepositStatus, Event, Lot, Order, Refund, RefundStatus
from jobs.management.commands.runjobs import descendants
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
    # What the killed cluster held comes back in seconds, not the production minute (as in
    # tests/test_faults.py): the batch it had claimed (its lease), its turn at the sweep, and
    # the poll that finds each sent refund succeeded.
    env = cluster_env(tmp_path, uuid.uuid4().hex[:8], AUCTION_REFUND_RATE_PER_SECOND="30", AUCTION_REFUND_BATCH="20",
                      AUCTION_REFUND_CLAIM_LEASE_SECONDS="5", AUCTION_SWEEP_SECONDS="2", AUCTION_REFUND_POLL_AFTER_SECONDS="1")
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


def backlog(queue: str, count: int, seconds: float):
    """``count`` tasks of ``seconds`` each in the queue of the cluster named ``queue``
    (its Q_CLUSTER_NAME), ahead of anything else; returns its broker."""
    return queued(queue, count, "time.sleep", seconds)


def queued(queue: str, count: int, func: str, *args):
    """``count`` tasks ``func(*args)`` in the queue of the cluster named ``queue``."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.tasks import async_task

    broker = get_broker(list_key=queue)
    prefix = Conf.PREFIX
    Conf.PREFIX = queue  # the packages are signed with the cluster's name
    try:
        with transaction.atomic():  # the database broker: one commit for them all
            for _ in range(count):
                async_task(func, *args, broker=broker)
    finally:
        Conf.PREFIX = prefix
    return broker


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_sigterm_to_the_process_group_under_a_backlog_stops_runjobs_within_its_grace(tmp_path):
    # given: a cluster busy with a backlog (a hundred 3-second tasks in its queue before it starts)
    env = cluster_env(tmp_path, uuid.uuid4().hex[:8])
    broker = backlog(env["Q_CLUSTER_NAME"], 100, 3)
    stack = Stack(url="")
    try:
        start_cluster(stack, env, tmp_path, "runjobs")
        _wait_for("the backlog being worked", lambda: broker.queue_size() < 100, stack, timeout=60)
        # when: SIGTERM to its whole process group, as systemd sends it
        started = time.monotonic()
        os.killpg(stack.procs[0].popen.pid, signal.SIGTERM)
        stack.procs[0].popen.wait(timeout=60)
        took = time.monotonic() - started
    finally:
        stack.stop()
        broker.delete_queue()
    # then: within the grace (20 s) and a margin, not after the backlog (100 x 3 s / 2 workers)
    print(f"runjobs stopped {took:.1f} s after SIGTERM")
    assert took < 30, stack.tails()


def test_the_sweep_works_beside_a_backlog_and_sigterm_to_the_main_process_stops_within_the_grace(tmp_path):
    # given: 20 lots that ended 700 s ago with a payment window of 600 s, the cluster
    # stopped all that while; 3,000 slow tasks queued before it starts (each longer than
    # the grace); the sweep every 2 s, refunds sent 10 a second
    grace, window = 6, 600
    lots = a_sale(20)
    Lot.objects.filter(pk__in=[lot.pk for lot in lots]).update(ends_at=timezone.now() - timedelta(seconds=window + 100))
    signals.lot_end_changed.send(sender=Lot, lot_id=lots[0].pk, ends_at=Lot.objects.get(pk=lots[0].pk).ends_at)
    env = cluster_env(
        tmp_path, uuid.uuid4().hex[:8], AUCTION_SWEEP_SECONDS="2", AUCTION_JOBS_STOP_GRACE=str(grace),
        AUCTION_PAYMENT_WINDOW_SECONDS=str(window), AUCTION_REFUND_RATE_PER_SECOND="10", AUCTION_REFUND_BATCH="10",
        AUCTION_REFUND_POLL_AFTER_SECONDS="1",
    )
    broker = backlog(env["Q_CLUSTER_NAME"], 3000, 30)
    stack, stack_of_the_stopped = Stack(url=""), Stack(url="")
    submitted = Refund.objects.exclude(status=RefundStatus.PENDING)
    try:
        start_cluster(stack, env, tmp_path, "runjobs-1")
        # when: the cluster works through its backlog, two tasks at a time
        started = time.monotonic()
        _wait_for("every lot settled", lambda: Order.objects.count() == 20, stack, timeout=60)
        settled_after = time.monotonic() - started
        # then: the sweep settled the sale within a minute, the backlog still in front of the trigger
        still_queued = broker.queue_size()
        assert still_queued > 2900, still_queued
        _wait_for("some refunds submitted", lambda: submitted.count() > 0, stack, timeout=60, interval=0.05)
        # when: SIGTERM to the main process only (a supervisor that signals its child)
        main = stack.procs[0].popen
        children = descendants(main.pid)
        stopping = time.monotonic()
        os.kill(main.pid, signal.SIGTERM)
        main.wait(timeout=60)
        took = time.monotonic() - stopping
        stack_of_the_stopped.procs.append(stack.procs.pop())
        # then: stopped within its grace, every process of it gone
        assert took < grace + 8, stack_of_the_stopped.tails()
        assert children
        # (a SIGKILLed process is gone once the kernel has run its exit: on a loaded box, a moment later)
        # (its leader has exited, as it should: only the children are waited for here)
        gone_by = time.monotonic() + 10
        while [pid for pid in children if alive(pid)] and time.monotonic() < gone_by:
            time.sleep(0.2)
        assert not [pid for pid in children if alive(pid)], stack_of_the_stopped.tails()
        # and nothing is half done: each order and refund once, each refund sent is recorded sent
        at_stop = submitted.count()
        each_once(20)
        assert Event.objects.filter(kind="refund.submitted").count() == at_stop
        # when: started again
        start_cluster(stack, env, tmp_path, "runjobs-2")
        done = Refund.objects.filter(status=RefundStatus.SUCCEEDED)
        _wait_for("every refund completed", lambda: done.count() == 60, stack, timeout=150, interval=0.5)
    finally:
        stack.stop()
        stack_of_the_stopped.stop()
        broker.delete_queue()
    print(f"settled {settled_after:.1f} s after the start with {still_queued} tasks queued; stopped {took:.1f} s after SIGTERM with {at_stop} of 60 refunds submitted")
    # then: the next start carried on; each thing done once
    each_once(20)
    assert Event.objects.filter(kind="refund.submitted").count() == 60
    assert Event.objects.filter(kind="refund.succeeded").count() == 60
    assert Event.objects.filter(kind="deposit.refunded").count() == 60
    # and each winner has the full window from the order, though the cluster was down past it
    assert not Order.objects.exclude(status="pending_payment").exists()
    assert all(order.pay_deadline >= order.created_at + timedelta(seconds=window - 1) for order in Order.objects.all())
    assert Deposit.objects.filter(status=DepositStatus.HELD).count() == 20


@pytest.mark.mariadb
def test_two_real_clusters_settling_and_refunding_the_same_sale_at_once_do_each_thing_once(tmp_path):
    # given: two clusters (each its own queue, two workers), both up
    from django_q.models import Success

    envs = [cluster_env(tmp_path, uuid.uuid4().hex[:8], AUCTION_REFUND_RATE_PER_SECOND="60", AUCTION_REFUND_BATCH="20") for _ in range(2)]
    stack = Stack(url="")
    try:
        for index, env in enumerate(envs):
            start_cluster(stack, env, tmp_path, f"runjobs-{index + 1}")
            queued(env["Q_CLUSTER_NAME"], 1, "time.sleep", 0)
        _wait_for("both clusters working", lambda: Success.objects.filter(func="time.sleep").count() == 2, stack, timeout=60)
        # when: a sale of 120 lots ends, and each cluster is told to settle it and send its refunds
        a_sale(120, deposits_per_lot=3)
        for env in envs:
            queued(env["Q_CLUSTER_NAME"], 2, "jobs.tasks.lots_end")
        _wait_for("every lot settled", lambda: Order.objects.count() == 120, stack, timeout=60)
        for env in envs:  # beside the sender the settling cluster queued for itself
            queued(env["Q_CLUSTER_NAME"], 2, "jobs.tasks.refunds_submit")
        done = Refund.objects.filter(status=RefundStatus.SUCCEEDED)
        _wait_for("every refund completed", lambda: done.count() == 240, stack, timeout=150, interval=0.5)
    finally:
        stack.stop()
    # then: each order and refund once, each refund sent once and finished once
    each_once(120, deposits_per_lot=3)
    assert Event.objects.filter(kind="refund.submitted").count() == 240
    assert Event.objects.filter(kind="refund.succeeded").count() == 240
    assert set(Refund.objects.values_list("status", "attempts")) == {(RefundStatus.SUCCEEDED, 1)}
    settled_by = {task.result for task in Success.objects.filter(func="jobs.tasks.lots_end")}
    print(f"lots_end results: {sorted(settled_by)}")
