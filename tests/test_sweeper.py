"""The sweep runs in runjobs' own thread, not through the queue: one cluster's
turn per interval, never queued by Django-Q2's scheduler, kept like a task."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from django_q.models import Failure, Schedule, Success
from django_q.scheduler import scheduler

from auction.models import Lot
from cms.dashboard import job_warnings
from jobs import sweeper
from jobs.schedules import SWEEP_NAME, periodic, sweep_every_minute
from tests.test_settlement_batches import a_sale, each_once

pytestmark = pytest.mark.django_db


def test_of_clusters_asking_at_once_one_takes_the_sweeps_turn(settings):
    # given: the sweep due a second ago, every 5 seconds
    settings.AUCTION_SWEEP_SECONDS = 5
    now = timezone.now()
    sweep_every_minute(first_run=now - timedelta(seconds=1))
    # when: two clusters ask at the same moment
    turns = [sweeper.sweep_claim(now=now), sweeper.sweep_claim(now=now)]
    # then: one sweeps; the next turn is an interval on, for whoever asks first then
    assert turns == [True, False]
    assert Schedule.objects.get(name=SWEEP_NAME).next_run == now + timedelta(seconds=5)
    assert not sweeper.sweep_claim(now=now + timedelta(seconds=4))
    assert sweeper.sweep_claim(now=now + timedelta(seconds=5))


def test_django_q2s_scheduler_never_queues_the_sweep_behind_a_backlog():
    # given: every periodic schedule due, the sweep too
    periodic(first_sweep=timezone.now() - timedelta(seconds=1))
    Schedule.objects.update(next_run=timezone.now() - timedelta(seconds=1))
    due = Schedule.objects.get(name=SWEEP_NAME).next_run
    # when: a cluster's scheduler looks at what is due
    with (
        mock.patch("django_q.scheduler.async_task", return_value="0123456789abcdef0123456789abcdef") as queue,
        mock.patch("django_q.scheduler.close_old_django_connections"),  # not the test's transaction
    ):
        scheduler()
    # then: the others are queued; the sweep is left to runjobs' sweeper thread
    queued = {call.args[0] for call in queue.call_args_list}
    assert "jobs.tasks.notifications_send" in queued and "jobs.tasks.sweep" not in queued
    assert Schedule.objects.get(name=SWEEP_NAME).next_run == due


def test_a_sweep_does_what_is_due_and_is_kept_like_a_task(settings):
    # given: three lots that ended, their triggers lost; the sweep due
    settings.AUCTION_SWEEP_SECONDS = 60
    a_sale(3)
    sweep_every_minute(first_run=timezone.now())
    # when: the sweeper looks, twice
    report = sweeper.sweep_run()
    assert sweeper.sweep_run() is None  # not due again for a minute
    # then: the lots are settled, the run kept as a success, the schedule a minute on
    assert report["lots_settled"] == 3
    assert set(Lot.objects.values_list("status", flat=True)) == {"sold"}
    each_once(3)
    success = Success.objects.get(func="jobs.tasks.sweep")
    schedule = Schedule.objects.get(name=SWEEP_NAME)
    assert success.group == SWEEP_NAME and schedule.task == success.id
    assert schedule.next_run >= success.stopped + timedelta(seconds=60)


def test_a_sweep_that_fails_is_a_failed_task_ops_see(settings):
    # given: the sweep due, and the database refusing it
    sweep_every_minute(first_run=timezone.now())
    with mock.patch("jobs.tasks.sweep", side_effect=RuntimeError("database went away")):
        # when: the sweeper runs it
        assert sweeper.sweep_run() is None
    # then: a failure with its traceback, and the dashboard's warning; the next turn retries
    failure = Failure.objects.get(func="jobs.tasks.sweep")
    assert "database went away" in failure.result
    assert job_warnings()
    assert Schedule.objects.get(name=SWEEP_NAME).next_run > timezone.now()
